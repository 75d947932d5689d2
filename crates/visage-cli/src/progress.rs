//! The terminal side of the libraries' progress: an indicatif bar on stderr for
//! [`visage_io::Progress`] (hidden when stderr is no terminal).

use visage_io::Progress;

/// An indicatif bar on stderr, one per stage the library starts.
#[derive(Default)]
pub(crate) struct Bar(Option<indicatif::ProgressBar>);

impl Progress for Bar {
    fn start(&mut self, stage: &str, total: u64) {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(&format!(
                "{stage} {{bar:40}} {{pos}}/{{len}} {{msg}} [{{elapsed_precise}}<{{eta_precise}}]"
            ))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        self.0 = Some(bar);
    }
    fn advance(&mut self, steps: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(steps);
        }
    }
    fn message(&mut self, text: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(text.to_owned());
        }
    }
    fn finish(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}
