//! Measuring dialogue files, shared by `toolflow eval` and the run's eval stage: coherence
//! with the models loaded here, and the LLM judge through the chat engine.

use std::path::{Path, PathBuf};

use toolflow_embed::{CachedEmbedder, ModelOptions};
use toolflow_eval::coherence::Pair;
use toolflow_eval::{Coherence, Nli, RunMetrics, evaluate_file, evaluate_file_with};
use toolflow_llm::Engine;
use toolflow_nli::{NliClassifier, NliError, NliOptions};
use toolflow_synth::Prompts;
use toolflow_synth::judge::JudgeOptions;

use crate::chat::{ChatSettings, build_engine, runtime};
use crate::error::PipelineError;
use crate::filter::GateJudge;

/// Pairs handed to the NLI model at a time, so that long datasets show progress in the log.
const NLI_CHUNK: usize = 256;

/// The models coherence is measured with: the cached sentence embedder, and the NLI
/// classifier or why there is none.
pub struct CoherenceModels {
    embedder: CachedEmbedder,
    nli: Result<NliClassifier, String>,
}

impl CoherenceModels {
    /// Opens the embedding cache (the model itself loads on the first cache miss) and finds
    /// and loads the NLI checkpoint (`nli_model`, else the cache, else the hub unless
    /// `embed.offline`). Only "no checkpoint anywhere" leaves EnR unavailable; a checkpoint
    /// that is there but broken is an error.
    pub fn open(embed: ModelOptions, nli_model: Option<PathBuf>) -> Result<Self, PipelineError> {
        let options = NliOptions {
            model_dir: nli_model,
            offline: embed.offline,
            ..NliOptions::with_cache_dir(embed.cache_dir.clone())
        };
        let embedder = CachedEmbedder::open(embed)?;
        let nli = match toolflow_nli::resolve_model(&options) {
            Ok(dir) => Ok(NliClassifier::load(&dir)?),
            Err(NliError::Unavailable { attempts }) => {
                let why = format!(
                    "no NLI model (tried: {})",
                    attempts
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                );
                tracing::warn!("EnR will not be measured: {why}");
                Err(why)
            }
            Err(err) => return Err(err.into()),
        };
        Ok(Self { embedder, nli })
    }

    /// What goes into the eval stage's key: which models measured coherence.
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
pub fn evaluate(
    path: &Path,
    models: Option<&mut CoherenceModels>,
) -> Result<RunMetrics, PipelineError> {
    let Some(models) = models else {
        return Ok(evaluate_file(path)?);
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
    Ok(evaluate_file_with(path, Some(&mut coherence))?)
}

/// The LLM judge's verdicts on a seeded sample of `path`'s dialogues, as the run's `judge`
/// entry in `metrics.json`. One dialogue's failure is counted there, never fatal.
pub fn judge_file(
    path: &Path,
    engine: &Engine,
    prompts: &Prompts,
    options: &JudgeOptions,
    runtime: &tokio::runtime::Runtime,
) -> Result<toolflow_core::metrics::JudgeMetrics, PipelineError> {
    let mut dialogues = Vec::new();
    toolflow_eval::input::for_each_dialogue(path, |dialogue, _| {
        dialogues.push(dialogue);
        Ok(())
    })?;
    tracing::info!(
        dialogues = dialogues.len(),
        sample = options.sample,
        "judging {}",
        path.display()
    );
    let report = runtime.block_on(toolflow_synth::judge::judge(
        engine, prompts, &dialogues, options,
    ));
    for failure in &report.failures {
        tracing::warn!("judge: dialogue {}: {}", failure.id, failure.error);
    }
    Ok(report.to_metrics(options))
}

/// The LLM judge as `toolflow eval` and `toolflow filter` run it: a runtime of its own, the
/// engine built in it, the prompts and the request settings.
pub struct Judge {
    /// Runs the engine's requests.
    pub runtime: tokio::runtime::Runtime,
    /// The endpoints, or the embedded model.
    pub engine: Engine,
    /// The prompts, the judge's among them.
    pub prompts: Prompts,
    /// Sample, seed, model and answer form.
    pub options: JudgeOptions,
}

impl Judge {
    /// Starts a runtime and builds `chat`'s engine in it.
    pub fn open(
        chat: &ChatSettings,
        prompts: Prompts,
        options: JudgeOptions,
    ) -> Result<Self, PipelineError> {
        let runtime = runtime()?;
        let engine = runtime.block_on(async { build_engine(chat) })?;
        Ok(Judge {
            runtime,
            engine,
            prompts,
            options,
        })
    }

    /// The verdicts on a seeded sample of `path`'s dialogues (see [`judge_file`]).
    pub fn file(&self, path: &Path) -> Result<toolflow_core::metrics::JudgeMetrics, PipelineError> {
        judge_file(
            path,
            &self.engine,
            &self.prompts,
            &self.options,
            &self.runtime,
        )
    }

    /// This judge as the filter's gate asks it.
    pub fn gate(&self) -> GateJudge<'_> {
        GateJudge {
            engine: &self.engine,
            prompts: &self.prompts,
            options: self.options.clone(),
            runtime: &self.runtime,
        }
    }
}
