//! What the training-loop tests share.

/// What a `Progress` receiver saw, in order.
#[derive(Default)]
pub struct Recorded(pub std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl visage_io::Progress for Recorded {
    fn start(&mut self, stage: &str, total: u64) {
        self.0
            .lock()
            .unwrap()
            .push(format!("start {stage} {total}"));
    }
    fn advance(&mut self, steps: u64) {
        self.0.lock().unwrap().push(format!("advance {steps}"));
    }
    fn message(&mut self, text: &str) {
        assert!(text.starts_with("loss "), "{text}");
        self.0.lock().unwrap().push("message".into());
    }
    fn finish(&mut self) {
        self.0.lock().unwrap().push("finish".into());
    }
}
