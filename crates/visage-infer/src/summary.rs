//! The Markdown summary of a verification report.

use crate::evaluate::EvalReport;

/// A TAR as a percentage, or `undefined` where the FAR cannot be reached.
pub fn tar_text(t: &Option<f64>) -> String {
    match t {
        Some(v) => format!("{:.4} %", v * 100.0),
        None => "undefined".into(),
    }
}

/// The summary of `report`, linking the JSON report and the plots by file name.
pub fn summary_markdown(report: &EvalReport, json_name: &str, roc: &str, hist: &str) -> String {
    let r = &report.verification;
    let m = &report.model;
    let mut s = String::new();
    s.push_str("# Verification summary\n\n");
    s.push_str(&format!(
        "- Accuracy: **{:.4} % +- {:.4} %** (10-fold mean +- population std)\n",
        r.accuracy_mean * 100.0,
        r.accuracy_std * 100.0
    ));
    s.push_str(&format!("- EER: {:.4} %\n", r.eer * 100.0));
    s.push_str(&format!("- AUC: {:.6}\n", r.auc));
    s.push_str(&format!(
        "- Pairs: {} (genuine {}, impostor {}); embedding size {}\n\n",
        r.pairs, r.genuine, r.impostor, r.dim
    ));
    s.push_str("| FAR | TAR |\n|---|---|\n");
    for (far, tar) in &r.tar_at_far {
        s.push_str(&format!("| {far} | {} |\n", tar_text(tar)));
    }
    s.push_str(
        "\n\"undefined\": fewer impostor pairs than 1/FAR, so that FAR cannot be reached.\n\n",
    );
    s.push_str("## Dataset\n\n");
    s.push_str(&format!("{}\n\n", report.dataset.describe()));
    s.push_str("## Model\n\n");
    s.push_str(&format!(
        "- Backbone: {} (embedding {}, input {}x{}, {} channel(s))\n",
        m.kind, m.embedding_dim, m.input_size[0], m.input_size[1], m.in_channels
    ));
    s.push_str(&format!(
        "- Weights: `{}` ({})\n",
        m.weights, m.weights_format
    ));
    s.push_str(&format!(
        "- Flip fusion: {}; backend: {}; batch size {}\n\n",
        if report.flip { "on" } else { "off" },
        report.backend,
        report.batch_size
    ));
    s.push_str("## Plots\n\n");
    s.push_str(&format!("- [ROC]({roc})\n- [Score histograms]({hist})\n\n"));
    s.push_str(&format!(
        "Full numbers: [{json_name}]({json_name}).\n\nProtocol: {}\n",
        r.protocol
    ));
    s
}
