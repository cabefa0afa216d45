//! Progress for people: indicatif bars and one status line per stage, on stderr, only when
//! stderr is a terminal and neither `--json` nor `--quiet` is given.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use toolflow_pipeline::{Observer, StageReport, SynthProgress};

/// Turns a pipeline's progress into bars and stage lines.
pub struct CliObserver {
    /// Stage lines (`  graph: 12 tools, 30 edges (1.20s)`) for a person reading stderr.
    stage_lines: bool,
    bars: bool,
    embedding: Mutex<Option<ProgressBar>>,
    synth: Mutex<Option<ProgressBar>>,
    enrich: Mutex<Option<ProgressBar>>,
}

impl CliObserver {
    /// Stage lines unless `--json` or `--quiet`; bars only on a terminal.
    pub fn new(global: &crate::cmd::Global) -> Self {
        CliObserver {
            stage_lines: !global.quiet && !global.json,
            bars: global.show_progress(),
            embedding: Mutex::new(None),
            synth: Mutex::new(None),
            enrich: Mutex::new(None),
        }
    }

    /// Moves the bar in `slot` (started on the first call) to `done` of `total`.
    fn count(&self, slot: &Mutex<Option<ProgressBar>>, template: &str, done: usize, total: usize) {
        let mut slot = slot.lock().expect("the bar lock");
        let bar = slot.get_or_insert_with(|| self.bar(template));
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    }

    fn bar(&self, template: &str) -> ProgressBar {
        if !self.bars {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(0);
        bar.set_style(ProgressStyle::with_template(template).expect("a valid progress template"));
        bar
    }
}

impl Observer for CliObserver {
    fn stage_finished(&self, report: &StageReport) {
        if let (true, Some(summary), Some(seconds)) =
            (self.stage_lines, &report.summary, report.seconds)
        {
            eprintln!("{:>7}: {summary} ({seconds:.2}s)", report.stage);
        }
    }

    fn embedding(&self, done: usize, total: usize) {
        let template = "embedding {wide_bar} {pos}/{len} strings ({per_sec}, {eta})";
        self.count(&self.embedding, template, done, total);
    }

    fn embedding_finished(&self) {
        finish(&self.embedding);
    }

    fn synth_started(&self, dialogues: u64) {
        let bar =
            self.bar("  synth {wide_bar} {pos}/{len} dialogues ({per_sec}, ETA {eta})\n  {msg}");
        bar.set_length(dialogues);
        *self.synth.lock().expect("the bar lock") = Some(bar);
    }

    fn synth_progress(&self, progress: &SynthProgress) {
        if let Some(bar) = &*self.synth.lock().expect("the bar lock") {
            bar.set_position(progress.written);
            bar.set_message(format!(
                "{} failed · {} in flight · {} requests · {} tokens · ${:.4}",
                progress.failed,
                progress.in_flight,
                progress.requests,
                progress.tokens,
                progress.cost_usd
            ));
        }
    }

    fn synth_finished(&self) {
        finish(&self.synth);
    }

    fn tools_enriched(&self, done: usize, total: usize) {
        let template = "enriching {wide_bar} {pos}/{len} tools ({per_sec}, {eta})";
        self.count(&self.enrich, template, done, total);
    }

    fn enrich_finished(&self) {
        finish(&self.enrich);
    }
}

/// Clears the bar in `slot`, if one was started.
fn finish(slot: &Mutex<Option<ProgressBar>>) {
    if let Some(bar) = slot.lock().expect("the bar lock").take() {
        bar.finish_and_clear();
    }
}
