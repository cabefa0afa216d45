//! Writing one dialogue (paper §3.2–3.3): the planner outlines it, then the user agent
//! writes a turn, the assistant answers or calls tools, the tool agent simulates each call's
//! result, and the assistant answers from them — until the plan's last step is addressed or
//! the turn limit comes.
//!
//! Every request's seed derives from the dialogue's seed and the request's position, and
//! call ids are numbered by the writer, so the same run seed, tools and response cache give
//! byte-identical dialogues whatever the order they are written in.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};
use toolflow_core::{
    AssistantTurn, CHECKED, Dialogue, DialogueSettings, Generation, Outcome, OutcomeStatus, Plan,
    SIMULATED, SamplingStrategy, StepKind, SubsetLink, Tool, ToolCall, ToolTurn, Turn, Usage,
    UserTurn,
};
use toolflow_llm::{ChatRequest, ChatResponse, Engine, EngineError, Message, ToolChoice};

use crate::config::{SynthConfig, SynthConfigError, ToolChoicePolicy};
use crate::context::{derive, describe, dialogue_id, dialogue_seed, draw, system_context};
use crate::execute::{ToolExecutor, ToolMode, ToolSession};
use crate::plan::{PlanError, parse_plan, plan_schema};
use crate::prompts::{PromptError, PromptKind, Prompts};
use crate::role::Role;
use crate::transcript::{
    chat_messages, linked_parameters_text, links_text, plan_text, tool_json, tool_spec, tools_json,
    tools_summary, user_view,
};

/// Why a [`Synthesizer`] cannot be made for these settings.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// The `[synth]` table is unusable.
    #[error(transparent)]
    Config(#[from] SynthConfigError),
    /// `[synth] models` names a model that no endpoint serves.
    #[error(
        "synth.models: role `{role}` names model `{model}`, which no endpoint serves (served: {served})"
    )]
    UnknownModel {
        /// The role it is named for.
        role: Role,
        /// The model.
        model: String,
        /// The models the endpoints serve, comma-separated.
        served: String,
    },
}

/// Why a dialogue stopped before its end; its text is the dialogue's `outcome.reason`, so
/// the wording is part of the recorded data.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// A request failed past the engine's retries.
    #[error("{role} agent: {source}")]
    Request { role: Role, source: EngineError },
    /// An agent's answer cannot be used.
    #[error("{role} agent: {source}")]
    Answer { role: Role, source: AnswerError },
    #[error(transparent)]
    Prompt(#[from] PromptError),
    /// Every planner answer broke the plan's rules or did not parse.
    #[error("planner: no usable plan in {attempts} attempts; the last: {last}")]
    NoPlan { attempts: u32, last: PlanError },
    /// An executed tool failed (did not start, crashed, hung, answered nonsense), or
    /// `[synth] tools = "execute"` met a tool nothing executes.
    #[error("tool `{tool}`: {reason}")]
    Execution { tool: String, reason: String },
}

/// What is wrong with an agent's answer.
#[derive(Debug, thiserror::Error)]
enum AnswerError {
    #[error("the answer is not JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("the result is not JSON: {0}")]
    ResultNotJson(serde_json::Error),
    #[error("the answer has no `{0}`")]
    Missing(&'static str),
    #[error("an empty answer")]
    EmptyAnswer,
    #[error("an empty message")]
    EmptyMessage,
    #[error("the answer has a `Current step:` line but no `User:` line")]
    NoUserLine,
}

impl AnswerError {
    fn of(self, role: Role) -> Failure {
        Failure::Answer { role, source: self }
    }
}

/// Writes dialogues for one run: the engine, the prompts and the settings they share.
pub struct Synthesizer {
    engine: Arc<Engine>,
    prompts: Prompts,
    config: SynthConfig,
    first_day: i64,
    last_day: i64,
    executor: Option<std::sync::Arc<dyn ToolExecutor>>,
}

impl Synthesizer {
    /// A synthesizer over `engine`, once `config` is checked and its named models are
    /// served.
    pub fn new(
        engine: Arc<Engine>,
        prompts: Prompts,
        config: SynthConfig,
    ) -> Result<Self, SynthError> {
        config.check()?;
        for (&role, model) in &config.models {
            if !engine.models().any(|served| served == model) {
                return Err(SynthError::UnknownModel {
                    role,
                    model: model.clone(),
                    served: engine.models().collect::<Vec<_>>().join(", "),
                });
            }
        }
        let (first_day, last_day) = config.days()?;
        Ok(Synthesizer {
            engine,
            prompts,
            config,
            first_day,
            last_day,
            executor: None,
        })
    }

    /// Executes tool calls through `executor` as `[synth] tools` says (without one, every
    /// result is simulated, and `execute` fails each dialogue that calls a tool).
    pub fn with_executor(mut self, executor: std::sync::Arc<dyn ToolExecutor>) -> Self {
        self.executor = Some(executor);
        self
    }

    /// The settings it writes with.
    pub fn config(&self) -> &SynthConfig {
        &self.config
    }

    /// The engine its agents ask.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The id dialogue `index` of this run gets.
    pub fn dialogue_id(&self, index: u64) -> String {
        dialogue_id(self.config.seed, index)
    }

    /// Writes dialogue `index` over `tools`. It never fails: a request that fails past the
    /// engine's retries, or an answer that cannot be used, ends the dialogue with status
    /// `failed`, its reason, and the turns written so far.
    pub async fn write(&self, index: u64, sampler: SamplingStrategy, tools: Vec<Tool>) -> Dialogue {
        self.write_with_links(index, sampler, tools, Vec::new())
            .await
    }

    /// [`Synthesizer::write`] for a subset with data-flow `links` (a `chain` subset): the
    /// planner is asked for steps whose later requests need what earlier answers returned,
    /// the user agent is told not to state those values itself, and the dialogue records
    /// each link with whether a call realised it ([`toolflow_core::links::realised`]).
    pub async fn write_with_links(
        &self,
        index: u64,
        sampler: SamplingStrategy,
        tools: Vec<Tool>,
        links: Vec<SubsetLink>,
    ) -> Dialogue {
        let seed = dialogue_seed(self.config.seed, index);
        let config = &self.config;
        let [min, max] = config.turns;
        let target_turns = min + draw(seed, "turns", u64::from(max - min + 1)) as u32;
        let models = Role::ALL.map(|role| {
            config
                .models
                .get(&role)
                .map_or_else(|| self.engine.draw_model(seed).to_owned(), Clone::clone)
        });
        let settings = DialogueSettings {
            sampler,
            plan: config.plan,
            target_turns,
            max_turns: target_turns + config.extra_turns,
            user_style: config.styles[draw(seed, "style", config.styles.len() as u64) as usize]
                .clone(),
            seed,
            models: Role::ALL
                .iter()
                .zip(&models)
                .map(|(role, model)| (role.to_string(), model.clone()))
                .collect(),
            temperature: config.temperature,
        };
        let context = system_context(seed, self.first_day, self.last_day, &config.locations);
        let session = match (&self.executor, config.tools) {
            (Some(executor), ToolMode::Execute | ToolMode::Auto) => Some(executor.open(index)),
            _ => None,
        };
        let mut writer = DialogueWriter {
            synth: self,
            context_text: describe(&context),
            settings,
            models,
            tools,
            links,
            plan: None,
            turns: Vec::new(),
            usage: Usage::default(),
            requests: 0,
            calls: 0,
            addressed: BTreeSet::new(),
            session: futures_util::lock::Mutex::new(session),
        };
        let outcome = writer.converse().await;
        if let Some(session) = writer.session.get_mut().take() {
            session.close().await;
        }
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(failure) => Outcome {
                status: OutcomeStatus::Failed,
                reason: Some(failure.to_string()),
                steps_done: writer.addressed.len() as u32,
            },
        };
        // Judged on the turns as written, failed dialogues included: a link realised before
        // a later failure was still realised.
        let links = toolflow_core::links::realise_links(&writer.links, &writer.turns);
        Dialogue {
            id: self.dialogue_id(index),
            index,
            tools: writer.tools,
            plan: writer.plan,
            links,
            context,
            turns: writer.turns,
            settings: writer.settings,
            outcome,
            usage: writer.usage,
        }
    }
}

/// The state of one dialogue being written.
struct DialogueWriter<'a> {
    synth: &'a Synthesizer,
    context_text: String,
    settings: DialogueSettings,
    /// The model of each role, in [`Role::ALL`]'s order (as in `settings.models`).
    models: [String; Role::ALL.len()],
    tools: Vec<Tool>,
    /// The subset's data-flow links, which the planner and the user agent are told about.
    links: Vec<SubsetLink>,
    plan: Option<Plan>,
    turns: Vec<Turn>,
    usage: Usage,
    /// Requests made so far: the next one's seed derives from it.
    requests: u64,
    /// Tool calls made so far: the next one's id is `call_<calls>`.
    calls: u64,
    /// Plan steps (or, without a plan, user turns) the assistant has dealt with.
    addressed: BTreeSet<u32>,
    /// The dialogue's executed tools, when `[synth] tools` executes any.
    session: futures_util::lock::Mutex<Option<Box<dyn ToolSession>>>,
}

impl DialogueWriter<'_> {
    async fn converse(&mut self) -> Result<Outcome, Failure> {
        if self.settings.plan {
            self.plan = Some(self.write_plan().await?);
        }
        for _ in 0..self.settings.max_turns {
            let step = self.user_turn().await?;
            let kind = step.and_then(|number| self.step_kind(number));
            let called = self.assistant_turns(kind).await?;
            // A tool-call step counts once the assistant called something for it; asking a
            // clarifying question instead leaves it open for the user's next turn.
            if kind != Some(StepKind::ToolCall) || called {
                let number = step.unwrap_or(self.addressed.len() as u32 + 1);
                self.addressed.insert(number);
            }
            let last_step = match &self.plan {
                Some(plan) => plan.steps.len() as u32,
                None => self.settings.target_turns,
            };
            if self.addressed.contains(&last_step) {
                return Ok(Outcome {
                    status: OutcomeStatus::Completed,
                    reason: None,
                    steps_done: self.addressed.len() as u32,
                });
            }
        }
        Ok(Outcome {
            status: OutcomeStatus::TurnLimit,
            reason: Some(format!(
                "{} user turns, the limit, came before the last step",
                self.settings.max_turns
            )),
            steps_done: self.addressed.len() as u32,
        })
    }

    fn step_kind(&self, number: u32) -> Option<StepKind> {
        let plan = self.plan.as_ref()?;
        plan.steps
            .iter()
            .find(|step| step.number == number)
            .map(|step| step.kind)
    }

    fn next_seed(&mut self) -> u64 {
        self.requests += 1;
        derive(&[
            b"toolflow-synth/request",
            &self.settings.seed.to_le_bytes(),
            &self.requests.to_le_bytes(),
        ])
    }

    /// Sends `request` for `role` with the dialogue's sampling settings and `seed`.
    async fn ask(
        &self,
        role: Role,
        mut request: ChatRequest,
        seed: u64,
    ) -> Result<(ChatResponse, Generation), Failure> {
        request.seed = Some(seed);
        request.temperature = Some(self.settings.temperature);
        request.max_tokens = Some(self.synth.config.max_tokens);
        let model = &self.models[role as usize];
        let answer = self
            .synth
            .engine
            .complete(model, role.as_str(), &request)
            .await
            .map_err(|source| Failure::Request { role, source })?;
        let generation = Generation {
            model: answer.model.clone(),
            usage: answer.usage,
            seed: Some(seed),
            finish_reason: Some(answer.finish_reason.clone().into()),
        };
        Ok((answer, generation))
    }

    /// Asks `request` for `role` with the next seed, and counts its tokens. An answer is
    /// asked again with the next seed, up to `turn_attempts` times in all, when it was cut
    /// (with `field`: a structured answer whose `field` string ran into `max_message_chars`
    /// was cut by the schema) or when `repeats` says its text only repeats an earlier
    /// message. The last answer is kept either way, recorded as cut
    /// (`finish_reason: length`) if it still is.
    async fn ask_retrying(
        &mut self,
        role: Role,
        request: ChatRequest,
        field: Option<&str>,
        repeats: &dyn Fn(&str) -> bool,
    ) -> Result<(ChatResponse, Generation), Failure> {
        let max_chars = self.synth.config.max_message_chars;
        let attempts = self.synth.config.turn_attempts.max(1);
        for attempt in 1.. {
            let seed = self.next_seed();
            let (answer, mut generation) = self.ask(role, request.clone(), seed).await?;
            self.usage += answer.usage;
            let text = answer.text.as_deref().unwrap_or_default();
            let cut = field.is_some_and(|field| mark_cut(&mut generation, text, field, max_chars));
            let repeated = !cut && repeats(text);
            if !(cut || repeated) || attempt >= attempts {
                return Ok((answer, generation));
            }
            if cut {
                tracing::debug!(%role, attempt, "an answer ran into max_message_chars; asking again");
            } else {
                tracing::debug!(%role, attempt, "an answer repeated an earlier message; asking again");
            }
        }
        unreachable!("the loop returns by its last attempt")
    }

    async fn write_plan(&mut self) -> Result<Plan, Failure> {
        let target = self.settings.target_turns as usize;
        let structured = self.synth.config.structured;
        let prompt = self.synth.prompts.render(
            PromptKind::Planner,
            json!({
                "tools": tools_json(&self.tools, false),
                "target_turns": target,
                "structured": structured,
                "links": links_text(&self.links),
            }),
        )?;
        let names: Vec<String> = self.tools.iter().map(|tool| tool.name.clone()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        // `check` holds `plan_attempts` to at least 1.
        let attempts = self.synth.config.plan_attempts.max(1);
        for attempt in 1..=attempts {
            let mut request = ChatRequest::new(vec![Message::user(prompt.clone())]);
            if structured {
                let mut schema = plan_schema(target);
                schema["properties"]["steps"]["items"]["properties"]["request"]["maxLength"] =
                    json!(self.synth.config.max_message_chars);
                request.json_schema = Some(schema);
            }
            let seed = self.next_seed();
            let (answer, _) = self.ask(Role::Planner, request, seed).await?;
            self.usage += answer.usage;
            match parse_plan(answer.text.as_deref().unwrap_or_default(), target, &names) {
                Ok(plan) if attempt < attempts && copies_prompt(&plan, &prompt) => {
                    tracing::debug!(attempt, "a plan step copies the planner's prompt");
                }
                Ok(plan) => return Ok(plan),
                Err(last) if attempt == attempts => return Err(Failure::NoPlan { attempts, last }),
                Err(error) => tracing::debug!(attempt, %error, "the planner's answer is unusable"),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Writes the next user turn; returns the plan step it belongs to.
    ///
    /// With a plan, that step is the first one the assistant has not yet dealt with: the
    /// user follows the outline in order, and a step stays open while the assistant asks
    /// for missing details. The writer knows it, so the user agent is told it and its
    /// answer is held to it (a small model left to work it out tends to stay on step 1).
    async fn user_turn(&mut self) -> Result<Option<u32>, Failure> {
        let structured = self.synth.config.structured;
        let steps = self.plan.as_ref().map(|plan| plan.steps.len() as u32);
        let open_step = self.plan.as_ref().and_then(|plan| {
            plan.steps
                .iter()
                .map(|step| step.number)
                .find(|number| !self.addressed.contains(number))
        });
        let completed: Vec<String> = self.addressed.iter().map(u32::to_string).collect();
        let prompt = self.synth.prompts.render(
            PromptKind::User,
            json!({
                "context": self.context_text,
                "tools": tools_json(&self.tools, false),
                "plan": self.plan.as_ref().map(plan_text),
                "history": user_view(&self.turns),
                "style": self.settings.user_style,
                "structured": structured,
                "completed_steps": completed.join(", "),
                "current_step": open_step,
                "linked_parameters": linked_parameters_text(&self.links),
            }),
        )?;
        let mut request = ChatRequest::new(vec![Message::user(prompt)]);
        if structured {
            request.json_schema = Some(user_schema(
                steps.zip(open_step),
                self.synth.config.max_message_chars,
            ));
        }
        let field = structured.then_some("message");
        let previous = self.turns.iter().rev().find_map(|turn| match turn {
            Turn::User(user) => Some(user.content.trim().to_string()),
            _ => None,
        });
        let parse = |text: &str| {
            if structured {
                user_from_json(text)
            } else {
                user_from_text(text)
            }
        };
        // A message that repeats the user's previous one word for word moves nothing
        // forward (a small model's way of getting stuck).
        let repeats = |text: &str| {
            previous.as_deref().is_some_and(|previous| {
                parse(text).is_ok_and(|(message, _)| message.trim() == previous)
            })
        };
        let (answer, generation) = self
            .ask_retrying(Role::User, request, field, &repeats)
            .await?;
        let (message, step) = parse(answer.text.as_deref().unwrap_or_default())
            .map_err(|error| error.of(Role::User))?;
        // The text form cannot be held to the open step while it is written.
        if step.is_some() && step != open_step {
            tracing::debug!(?step, ?open_step, "the user agent named another step");
        }
        let step = open_step;
        self.turns.push(Turn::User(UserTurn {
            content: message,
            plan_step: step,
            generation: Some(generation),
        }));
        Ok(step)
    }

    /// The assistant's answer to the last user turn: calls and their results, round after
    /// round, until it answers in text. Returns whether it called any tool.
    async fn assistant_turns(&mut self, step: Option<StepKind>) -> Result<bool, Failure> {
        let config = &self.synth.config;
        let system = self.synth.prompts.render(
            PromptKind::Assistant,
            json!({"context": self.context_text, "tools": tools_summary(&self.tools)}),
        )?;
        let mut called = false;
        for round in 0..=config.max_tool_rounds {
            let tool_choice = match (config.tool_choice, round, step) {
                _ if round == config.max_tool_rounds => ToolChoice::None,
                (ToolChoicePolicy::Plan, 0, Some(StepKind::ToolCall)) => ToolChoice::Required,
                (ToolChoicePolicy::Plan, 0, Some(StepKind::Chitchat)) => ToolChoice::None,
                (ToolChoicePolicy::Plan, 1.., Some(_)) => ToolChoice::None,
                _ => ToolChoice::Auto,
            };
            let mut messages = vec![Message::system(system.clone())];
            messages.extend(chat_messages(&self.turns));
            let mut request = ChatRequest::new(messages);
            request.tools = self.tools.iter().map(tool_spec).collect();
            let structured_answer = config.structured_answers && tool_choice == ToolChoice::None;
            if structured_answer {
                request.json_schema = Some(answer_schema(config.max_message_chars));
            }
            request.tool_choice = tool_choice;
            request.keep_invalid_arguments = config.keep_invalid_arguments;
            let field = structured_answer.then_some("answer");
            let (answer, generation) = self
                .ask_retrying(Role::Assistant, request, field, &|_| false)
                .await?;
            let calls: Vec<ToolCall> = answer
                .tool_calls
                .iter()
                .map(|call| {
                    let id = format!("call_{}", self.calls);
                    self.calls += 1;
                    let text = if call.arguments.trim().is_empty() {
                        "{}"
                    } else {
                        call.arguments.as_str()
                    };
                    match serde_json::from_str(text) {
                        Ok(arguments) => ToolCall {
                            id,
                            name: call.name.clone(),
                            arguments,
                            arguments_raw: None,
                        },
                        Err(_) => ToolCall {
                            id,
                            name: call.name.clone(),
                            arguments: Value::Null,
                            arguments_raw: Some(call.arguments.clone()),
                        },
                    }
                })
                .collect();
            let content = match answer.text.as_deref() {
                Some(text) if structured_answer => {
                    Some(answer_from_json(text).map_err(|error| error.of(Role::Assistant))?)
                }
                text => text
                    .map(str::trim)
                    .filter(|text| !text.is_empty())
                    .map(str::to_owned),
            };
            if content.is_none() && calls.is_empty() {
                return Err(AnswerError::EmptyAnswer.of(Role::Assistant));
            }
            self.turns.push(Turn::Assistant(AssistantTurn {
                content,
                tool_calls: calls.clone(),
                generation: Some(generation),
            }));
            if calls.is_empty() {
                return Ok(called);
            }
            called = true;
            let seeds: Vec<u64> = calls.iter().map(|_| self.next_seed()).collect();
            let results = if self.session.get_mut().is_some() {
                // Executed tools may keep state: their calls run in the dialogue's order.
                let mut results = Vec::with_capacity(calls.len());
                for (call, seed) in calls.iter().zip(seeds) {
                    results.push(self.tool_result(call, seed).await);
                }
                results
            } else {
                futures_util::future::join_all(
                    calls
                        .iter()
                        .zip(seeds)
                        .map(|(call, seed)| self.tool_result(call, seed)),
                )
                .await
            };
            for result in results {
                let (turn, usage) = result?;
                self.usage += usage;
                self.turns.push(Turn::Tool(turn));
            }
        }
        unreachable!("the last round forbids calls, and the engine enforces it")
    }

    /// The result for one call: an error object, without asking the model or running
    /// anything, when the arguments break the tool's schema; otherwise the executed result
    /// when `[synth] tools` executes this tool, else a simulated result that follows the
    /// tool's return schema (or is a realistic error).
    async fn tool_result(&self, call: &ToolCall, seed: u64) -> Result<(ToolTurn, Usage), Failure> {
        let error_turn = |message: String| {
            Ok((
                ToolTurn {
                    tool_call_id: call.id.clone(),
                    name: call.name.clone(),
                    content: json!({ "error": message }),
                    is_error: true,
                    origin: CHECKED.into(),
                    generation: None,
                },
                Usage::default(),
            ))
        };
        let Some(tool) = self.tools.iter().find(|tool| tool.name == call.name) else {
            return error_turn(format!("unknown function `{}`", call.name));
        };
        if call.arguments_raw.is_some() {
            return error_turn("the arguments are not valid JSON".into());
        }
        if let Some(problem) = argument_problem(tool, &call.arguments) {
            return error_turn(format!("invalid arguments for `{}`: {problem}", tool.name));
        }
        if let Some(turn) = self.execute(tool, call).await? {
            return Ok((turn, Usage::default()));
        }
        let prompt = self.synth.prompts.render(
            PromptKind::Tool,
            json!({
                "tool": tool_json(tool, true).to_string(),
                "call": json!({"name": call.name, "arguments": call.arguments}).to_string(),
                "context_line": self.context_text,
                "errors": self.synth.config.simulated_errors,
            }),
        )?;
        let mut request = ChatRequest::new(vec![Message::user(prompt)]);
        request.json_schema = Some(result_schema(tool, self.synth.config.simulated_errors));
        let (answer, generation) = self.ask(Role::Tool, request, seed).await?;
        let answer_json = answer
            .json()
            .map_err(|error| AnswerError::ResultNotJson(error).of(Role::Tool))?;
        let result = answer_json.get("result").cloned().unwrap_or(Value::Null);
        let is_error = result.as_object().is_some_and(|object| {
            object.len() == 1 && object.get("error").is_some_and(Value::is_string)
        });
        Ok((
            ToolTurn {
                tool_call_id: call.id.clone(),
                name: call.name.clone(),
                content: result,
                is_error,
                origin: SIMULATED.into(),
                generation: Some(generation),
            },
            answer.usage,
        ))
    }
}

/// Whether a step of `plan` is a phrase of four words or more copied from the planner's
/// `prompt` (its example outline, or a tool's description): small models copy the example
/// whatever the tools are. Such a plan is asked for again while attempts are left.
fn copies_prompt(plan: &Plan, prompt: &str) -> bool {
    let prompt = prompt.to_lowercase();
    plan.steps.iter().any(|step| {
        let request = step.request.trim().trim_end_matches('.').to_lowercase();
        request.split_whitespace().nth(3).is_some() && prompt.contains(&request)
    })
}

impl DialogueWriter<'_> {
    /// The executed result of `call`, or None when `[synth] tools` has it simulated.
    async fn execute(&self, tool: &Tool, call: &ToolCall) -> Result<Option<ToolTurn>, Failure> {
        let mode = self.synth.config.tools;
        let fail = |reason: String| Failure::Execution {
            tool: tool.name.clone(),
            reason,
        };
        let runnable = match &self.synth.executor {
            Some(executor) => executor.executes(tool),
            None => Err("no tool executor is configured (no [[mcp]] server)".into()),
        };
        match (mode, runnable) {
            (ToolMode::Simulate, _) | (ToolMode::Auto, Err(_)) => return Ok(None),
            (ToolMode::Execute, Err(reason)) => return Err(fail(reason)),
            (ToolMode::Execute | ToolMode::Auto, Ok(())) => {}
        }
        let mut session = self.session.lock().await;
        let session = session
            .as_mut()
            .ok_or_else(|| fail("no tool session is open".into()))?;
        let executed = session.call(tool, &call.arguments).await.map_err(fail)?;
        Ok(Some(ToolTurn {
            tool_call_id: call.id.clone(),
            name: call.name.clone(),
            content: executed.content,
            is_error: executed.is_error,
            origin: executed.origin,
            generation: None,
        }))
    }
}

/// Why `arguments` break `tool`'s parameter schema, if they do.
fn argument_problem(tool: &Tool, arguments: &Value) -> Option<String> {
    let validator = jsonschema::validator_for(&tool.parameters).ok()?;
    validator.validate(arguments).err().map(|error| {
        let at = error.instance_path().to_string();
        if at.is_empty() {
            error.to_string()
        } else {
            format!("{at}: {error}")
        }
    })
}

/// The tool agent's answer: `{"result": …}`, the result following the tool's return schema
/// or, with `errors`, being an error object. A return schema that does not compile is not
/// enforced.
fn result_schema(tool: &Tool, errors: bool) -> Value {
    let error = json!({
        "type": "object",
        "properties": {"error": {"type": "string", "minLength": 1}},
        "required": ["error"],
        "additionalProperties": false
    });
    let result = match &tool.returns {
        Some(returns) if jsonschema::validator_for(returns).is_ok() => {
            if errors {
                json!({"anyOf": [closed(returns), error]})
            } else {
                closed(returns)
            }
        }
        _ => json!({}),
    };
    json!({
        "type": "object",
        "properties": {"result": result},
        "required": ["result"],
        "additionalProperties": false
    })
}

/// `schema` with every object that lists `properties` and says nothing of others closed:
/// all its properties required, no others allowed. A result then holds every field the
/// tool returns and nothing else (small models otherwise copy the tool's definition into
/// it); the filter still checks results against the tool's own schema.
fn closed(schema: &Value) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let mut map = map.clone();
    let each_value = |value: &mut Value| {
        if let Value::Object(schemas) = value {
            schemas
                .values_mut()
                .for_each(|schema| *schema = closed(schema));
        }
    };
    for key in ["properties", "$defs", "definitions"] {
        if let Some(value) = map.get_mut(key) {
            each_value(value);
        }
    }
    for key in ["anyOf", "oneOf", "allOf", "prefixItems"] {
        if let Some(Value::Array(schemas)) = map.get_mut(key) {
            schemas
                .iter_mut()
                .for_each(|schema| *schema = closed(schema));
        }
    }
    if let Some(items) = map.get_mut("items") {
        *items = closed(items);
    }
    if let Some(Value::Object(properties)) = map.get("properties")
        && !map.contains_key("additionalProperties")
    {
        let names: Vec<Value> = properties.keys().cloned().map(Value::String).collect();
        map.insert("required".into(), Value::Array(names));
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    Value::Object(map)
}

/// The user agent's structured answer: with a plan of `steps` steps whose first open one
/// is `open`, the steps done, the current step (which must be `open`) and the message;
/// without one, the message only.
fn user_schema(plan: Option<(u32, u32)>, max_chars: u32) -> Value {
    let message = json!({"type": "string", "minLength": 1, "maxLength": max_chars});
    match plan {
        Some((steps, open)) => {
            let step = json!({"type": "integer", "minimum": 1, "maximum": steps});
            json!({
                "type": "object",
                "properties": {
                    "completed_steps": {"type": "array", "items": step, "maxItems": steps},
                    "current_step": {"type": "integer", "enum": [open]},
                    "message": message
                },
                "required": ["completed_steps", "current_step", "message"],
                "additionalProperties": false
            })
        }
        None => json!({
            "type": "object",
            "properties": {"message": message},
            "required": ["message"],
            "additionalProperties": false
        }),
    }
}

/// The assistant's structured text answer: one string that cannot open like JSON, a list
/// or markup (the first character is none of `{`, `[`, `<`, nor a space), at most
/// `max_chars` long. The length sits in the pattern because a grammar engine may not take
/// `pattern` and `maxLength` together. The pattern spells its classes out (no `\s`, `\S`):
/// llama.cpp's schema-to-grammar converter knows only `\t`, `\n`, `\r` and escaped
/// punctuation, and llama-cpp-python's server dies on the rest.
fn answer_schema(max_chars: u32) -> Value {
    let rest = max_chars.saturating_sub(1);
    json!({
        "type": "object",
        "properties": {"answer": {"type": "string", "pattern": format!("^[^{{\\[< \\t\\n\\r](.|\\n|\\r){{0,{rest}}}$")}},
        "required": ["answer"],
        "additionalProperties": false
    })
}

/// Records a structured answer whose `field` ran into the schema's length limit as cut at
/// the limit (`finish_reason: length`), as it is: the grammar ended the string there, and
/// the backend, which saw a closed JSON object, said `stop`.
/// Returns whether it was.
fn mark_cut(generation: &mut Generation, text: &str, field: &str, max_chars: u32) -> bool {
    let chars = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|answer| answer[field].as_str().map(|s| s.chars().count()));
    let cut = chars.is_some_and(|chars| chars >= max_chars as usize);
    if cut {
        generation.finish_reason = Some("length".into());
    }
    cut
}

fn answer_from_json(text: &str) -> Result<String, AnswerError> {
    let answer: Value = serde_json::from_str(text).map_err(AnswerError::NotJson)?;
    let answer = answer["answer"]
        .as_str()
        .ok_or(AnswerError::Missing("answer"))?
        .trim();
    if answer.is_empty() {
        return Err(AnswerError::EmptyAnswer);
    }
    Ok(answer.to_owned())
}

fn user_from_json(text: &str) -> Result<(String, Option<u32>), AnswerError> {
    let answer: Value = serde_json::from_str(text).map_err(AnswerError::NotJson)?;
    let message = answer["message"]
        .as_str()
        .ok_or(AnswerError::Missing("message"))?;
    let step = answer["current_step"].as_u64().map(|step| step as u32);
    Ok((clean_message(message)?, step))
}

/// The text form: optional `Completed steps:` and `Current step:` lines, then `User:` and
/// the message (which may run over several lines).
fn user_from_text(text: &str) -> Result<(String, Option<u32>), AnswerError> {
    let mut step = None;
    for line in text.lines() {
        let line = line.trim().replace("**", "");
        if let Some(rest) = line.strip_prefix("Current step:") {
            step = rest.trim().trim_end_matches('.').parse().ok();
        }
    }
    let message = match text.find("User:") {
        Some(at) => &text[at + "User:".len()..],
        None if step.is_none() => text,
        None => return Err(AnswerError::NoUserLine),
    };
    Ok((clean_message(message)?, step))
}

/// Strips what models wrap messages in: whitespace, quotes, a leading `User:`.
fn clean_message(message: &str) -> Result<String, AnswerError> {
    let message = message.trim();
    let message = message.strip_prefix("User:").unwrap_or(message).trim();
    let message = message
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(message)
        .trim();
    if message.is_empty() {
        return Err(AnswerError::EmptyMessage);
    }
    Ok(message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_step_copied_from_the_prompt_is_found() {
        let prompt = "An example:\n1. Tool call request: The user wants to reserve a meeting room for tomorrow afternoon.";
        let plan = |request: &str| Plan {
            steps: vec![toolflow_core::PlanStep {
                number: 1,
                kind: StepKind::ToolCall,
                request: request.into(),
            }],
        };
        assert!(copies_prompt(
            &plan("Reserve a meeting room for tomorrow afternoon."),
            prompt
        ));
        assert!(!copies_prompt(
            &plan("Find a flight from Lyon to Osaka on Friday"),
            prompt
        ));
        // Too short to tell a copy from a common phrase.
        assert!(!copies_prompt(&plan("reserve a meeting"), prompt));
    }

    #[test]
    fn a_message_that_reaches_the_schema_limit_is_recorded_as_cut() {
        let generation = || Generation {
            model: "m".into(),
            usage: Usage::default(),
            seed: None,
            finish_reason: Some("stop".into()),
        };
        let mut cut = generation();
        assert!(mark_cut(
            &mut cut,
            r#"{"message": "Book the room for tomorr"}"#,
            "message",
            24
        ));
        assert_eq!(cut.finish_reason.as_deref(), Some("length"));
        let mut whole = generation();
        assert!(!mark_cut(
            &mut whole,
            r#"{"answer": "Booked."}"#,
            "answer",
            24
        ));
        assert_eq!(whole.finish_reason.as_deref(), Some("stop"));
    }

    #[test]
    fn the_user_schema_holds_the_answer_to_the_open_step() {
        let schema = user_schema(Some((4, 2)), 100);
        assert_eq!(schema["properties"]["current_step"]["enum"], json!([2]));
        assert_eq!(
            schema["properties"]["completed_steps"]["items"]["maximum"],
            4
        );
        assert_eq!(schema["properties"]["message"]["maxLength"], 100);
        assert!(
            user_schema(None, 100)["properties"]
                .get("current_step")
                .is_none()
        );
    }

    #[test]
    fn simulated_results_hold_every_returned_field_and_no_other() {
        let returns = json!({"type": "array", "items": {"type": "object",
            "properties": {"id": {"type": "string"}, "tags": {"type": "object", "properties": {"a": {}}}},
            "required": []}});
        let closed = closed(&returns);
        assert_eq!(closed["items"]["required"], json!(["id", "tags"]));
        assert_eq!(closed["items"]["additionalProperties"], false);
        assert_eq!(
            closed["items"]["properties"]["tags"]["required"],
            json!(["a"])
        );
        // A returned field named `properties` is a field, not a schema keyword.
        let named = json!({"type": "object", "properties": {"properties": {"type": "string"}}});
        assert_eq!(
            super::closed(&named)["properties"]["properties"],
            json!({"type": "string"})
        );
        // A schema that says what else it allows is left as it is.
        let open =
            json!({"type": "object", "properties": {"id": {}}, "additionalProperties": true});
        assert_eq!(super::closed(&open), open);
    }

    #[test]
    fn structured_answers_are_plain_text_of_bounded_length() {
        let schema = answer_schema(240);
        assert_eq!(
            schema["properties"]["answer"]["pattern"],
            "^[^{\\[< \\t\\n\\r](.|\\n|\\r){0,239}$"
        );
        let validator = jsonschema::validator_for(&schema).expect("the answer schema compiles");
        assert!(validator.is_valid(&json!({"answer": "Sunny.\nHigh of 21."})));
        for opening in ["{\"a\": 1}", "[1]", "<b>hi</b>", " hi", "\nhi"] {
            assert!(
                !validator.is_valid(&json!({ "answer": opening })),
                "{opening:?}"
            );
        }
        assert!(!validator.is_valid(&json!({"answer": "x".repeat(241)})));
        assert_eq!(
            answer_from_json(r#"{"answer": " It is 21 degrees. "}"#).unwrap(),
            "It is 21 degrees."
        );
        assert!(answer_from_json(r#"{"answer": "  "}"#).is_err());
        assert!(answer_from_json("It is 21 degrees.").is_err());
    }

    #[test]
    fn user_answers_parse_in_both_forms() {
        assert_eq!(
            user_from_json(
                r#"{"completed_steps": [1], "current_step": 2, "message": "User: \"And tomorrow?\""}"#
            )
            .unwrap(),
            ("And tomorrow?".to_string(), Some(2))
        );
        assert_eq!(
            user_from_text("Completed steps: 1\n**Current step:** 2\nUser: And tomorrow?\nThanks.")
                .unwrap(),
            ("And tomorrow?\nThanks.".to_string(), Some(2))
        );
        assert_eq!(
            user_from_text("Hi there").unwrap(),
            ("Hi there".to_string(), None)
        );
        assert!(user_from_text("Current step: 2").is_err());
        assert!(user_from_json(r#"{"current_step": 1, "message": "  "}"#).is_err());
    }

    #[test]
    fn a_schema_breaking_call_is_named() {
        let tool: Tool = serde_json::from_value(json!({
            "name": "weather", "description": "", "source": "t",
            "parameters": {"type": "object", "properties": {"days": {"type": "integer"}}, "required": ["city"]},
            "returns": null
        }))
        .unwrap();
        assert!(argument_problem(&tool, &json!({"city": "Oslo"})).is_none());
        assert!(
            argument_problem(&tool, &json!({"days": 2}))
                .unwrap()
                .contains("city")
        );
        assert!(
            argument_problem(&tool, &json!({"city": "Oslo", "days": "two"}))
                .unwrap()
                .contains("/days")
        );
        assert_eq!(
            result_schema(&tool, true)["properties"]["result"],
            json!({})
        );
    }
}
