//! Burn `.bin` records (what `BinFileRecorder` with full precision writes) read from untrusted
//! files without trusting their sizes.
//!
//! Burn's recorder decodes with bincode's `standard()` configuration, which has no limit: a
//! length prefix of 2^60 in a 9-byte file makes it allocate 2^60 bytes and abort the process.
//! Here the file is read whole (a regular file, bounded), and decoded with a bincode limit of
//! a few times its size: every container a valid record holds is backed by bytes of the file,
//! so a length beyond that is an error, not an allocation.

use std::path::Path;

use burn::record::{BurnRecord, FullPrecisionSettings, Record};
use burn::tensor::backend::Backend;

use crate::TrainError;

/// Largest record file read (bytes): 16 GiB.
pub const MAX_RECORD_BYTES: u64 = 16 << 30;

/// Decodes `bytes` with a bincode limit of `LIMIT` bytes.
fn decode<I: serde::de::DeserializeOwned, B: Backend, const LIMIT: usize>(
    bytes: &[u8],
) -> Result<BurnRecord<I, B>, String> {
    let config = bincode::config::standard().with_limit::<LIMIT>();
    bincode::serde::decode_from_slice::<BurnRecord<I, B>, _>(bytes, config)
        .map(|(record, _)| record)
        .map_err(|e| e.to_string())
}

/// Decodes the record item in `bytes` (a `.bin` file's content), without building tensors:
/// the bincode limit is the smallest power of two of at least 8 x the content plus 1 MiB.
pub fn decode_item<B: Backend, R: Record<B>>(
    bytes: &[u8],
) -> Result<R::Item<FullPrecisionSettings>, String> {
    type Item<B, R> = <R as Record<B>>::Item<FullPrecisionSettings>;
    let need = (bytes.len() as u64).saturating_mul(8) + (1 << 20);
    macro_rules! pick {
        ($($k:literal),*) => {
            $(if need <= 1u64 << $k {
                decode::<Item<B, R>, B, { 1usize << $k }>(bytes)
            } else)* {
                Err(format!("{} bytes: larger than a record read here", bytes.len()))
            }
        };
    }
    let record = pick!(21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38)?;
    Ok(record.item)
}

/// Decodes the record in `bytes` (a `.bin` file's content), see [`decode_item`].
pub fn decode_record<B: Backend, R: Record<B>>(
    bytes: &[u8],
    device: &B::Device,
) -> Result<R, String> {
    Ok(R::from_item(decode_item::<B, R>(bytes)?, device))
}

/// Reads the Burn record at `path` (a regular file of at most [`MAX_RECORD_BYTES`]); errors
/// name the file and never abort on a size read from it.
pub fn read_record<B: Backend, R: Record<B>>(
    path: &Path,
    device: &B::Device,
) -> Result<R, TrainError> {
    let bytes = visage_data::read::read_regular(path, MAX_RECORD_BYTES)?;
    decode_record::<B, R>(&bytes, device).map_err(|message| TrainError::Checkpoint {
        path: path.display().to_string(),
        message: format!("not a Burn record of the expected kind: {message}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::module::Module;
    use burn::nn::{Linear, LinearConfig, LinearRecord};
    use burn::record::{BinBytesRecorder, Recorder};

    #[test]
    fn a_record_round_trips_and_a_huge_length_is_an_error() {
        let device = Default::default();
        let linear: Linear<Flex> = LinearConfig::new(3, 2).init(&device);
        // Burn's parameters are lazy: draw them before the record is taken.
        let weight = linear.weight.val().into_data().to_vec::<f32>().unwrap();
        let bytes = Recorder::<Flex>::record(
            &BinBytesRecorder::<FullPrecisionSettings>::default(),
            linear.clone().into_record(),
            (),
        )
        .unwrap();
        let back: LinearRecord<Flex> = decode_record::<Flex, _>(&bytes, &device).unwrap();
        let loaded = linear.clone().load_record(back);
        assert_eq!(
            loaded.weight.val().into_data().to_vec::<f32>().unwrap(),
            weight
        );
        // A varint length of 2^60 - 1 as the first string's length.
        let huge = [0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(decode_record::<Flex, LinearRecord<Flex>>(&huge, &device).is_err());
        // Every cut of a valid record is an error, never a panic or an abort.
        for cut in 0..bytes.len() {
            assert!(decode_record::<Flex, LinearRecord<Flex>>(&bytes[..cut], &device).is_err());
        }
    }
}
