//! The backbone input size as people type it: `112x112` or `112,112`.

use crate::error::{InferError, Result};

/// Parses an input size `HxW` (or `HXW`, or `H,W`; spaces around the numbers allowed) into
/// `[H, W]`; both must be at least 1.
///
/// ```
/// assert_eq!(visage_infer::parse_hw("112x96").unwrap(), [112, 96]);
/// assert_eq!(visage_infer::parse_hw("112, 112").unwrap(), [112, 112]);
/// assert!(visage_infer::parse_hw("0x28").is_err());
/// ```
///
/// # Errors
/// [`InferError::InputSize`] naming the text and the part at fault.
pub fn parse_hw(text: &str) -> Result<[usize; 2]> {
    let err = |reason: String| InferError::InputSize {
        text: text.to_string(),
        reason,
    };
    let (h, w) = text
        .split_once([',', 'x', 'X'])
        .ok_or_else(|| err("no `x` or `,` between height and width".into()))?;
    let side = |v: &str, what: &str| -> Result<usize> {
        let n: usize = v
            .trim()
            .parse()
            .map_err(|_| err(format!("the {what} `{}` is not a whole number", v.trim())))?;
        if n == 0 {
            return Err(err(format!("the {what} is 0; it must be at least 1")));
        }
        Ok(n)
    };
    Ok([side(h, "height")?, side(w, "width")?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_separators_and_bad_values() {
        assert_eq!(parse_hw("112x112").unwrap(), [112, 112]);
        assert_eq!(parse_hw("112X96").unwrap(), [112, 96]);
        assert_eq!(parse_hw("28,32").unwrap(), [28, 32]);
        for bad in ["0x28", "28,0", "112", "ax2", "2x", "-1x3", "1x2x3"] {
            let e = parse_hw(bad).unwrap_err().to_string();
            assert!(e.contains("input_size") && e.contains(bad), "{bad}: {e}");
        }
        assert!(parse_hw("0x28")
            .unwrap_err()
            .to_string()
            .contains("height is 0"));
    }
}
