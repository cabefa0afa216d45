//! `rejected.jsonl`: the dialogues the filter rejected, each with every reason it gave. The
//! rules themselves (what each checks) live in `toolflow-eval`; their names, levels and the
//! reasons they give are records, read by the report and by people's scripts.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dialogue::Dialogue;

/// One line of `rejected.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Rejection {
    /// Every reason the filter gave, warnings included.
    pub reasons: Vec<Reason>,
    /// The dialogue, as it was read.
    pub dialogue: Dialogue,
}

/// A filter rule. Each variant's documentation says what fails and gives one passing and
/// one failing example (turns written as `role: text`, calls as `name {arguments}`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// A tool call's arguments did not parse as JSON (`ToolCall.arguments_raw` is set), or
    /// parsed to something other than an object.
    /// Passes: `get_weather {"city": "Lyon"}`. Fails: `get_weather {"city": "Lyon"` (raw
    /// text kept because it did not parse).
    UnparsedArguments,
    /// A call names a tool that is not among the dialogue's tools.
    /// Passes: tools `[get_weather]`, call `get_weather {...}`. Fails: call `get_forecast {...}`.
    UnknownTool,
    /// The arguments break the tool's JSON Schema (type, enum, pattern, extra property…), or
    /// pass an argument the tool does not declare: a schema that lists `properties` and says
    /// nothing of others (no `additionalProperties`) still takes only those, as a function
    /// call does; missing required arguments are left to [`Rule::MissingRequired`]. A call that the tool
    /// answered with an error (`is_error`) is exempt from this rule and the next: it is a
    /// recorded mistake with its error and the recovery after it, which is what a model
    /// should learn from.
    /// Passes: `{"days": 3}` for `days: integer`. Fails: `{"days": "three"}`.
    SchemaViolation,
    /// A required argument of the tool is absent (exempt, like the rule above, when the
    /// tool answered the call with an error).
    /// Passes: `{"city": "Lyon"}` with `required: [city]`. Fails: `{}`.
    MissingRequired,
    /// An argument value appears nowhere in the text before the call. Grounded means:
    /// a string value (trimmed, non-empty) occurs, case-insensitively, as a substring of the
    /// system context (time, location), an earlier user turn, or a string in an earlier tool
    /// result; a number equals some number written in that text (digits with an optional
    /// decimal part; `2024-05-14` holds 2024, 5 and 14) or a number in an earlier result.
    /// Exempt: booleans, nulls, values whose schema has `enum` or `const`, and values equal to
    /// their schema's `default`. Values the model resolved itself ("tomorrow" → a date) fail,
    /// which is why the default level is `warn`.
    /// Passes: user `weather in Lyon?`, call `{"city": "lyon"}`. Fails: call `{"city": "Paris"}`.
    UngroundedArgument,
    /// A tool result is not a JSON object or array (a bare string, number or null; a string
    /// holding JSON text counts as a failure: it should have been parsed before storing).
    /// Passes: `{"temp": 21}`. Fails: `"It is 21 degrees"`.
    ResultNotJson,
    /// The dialogue is unfinished: no turns, or it ends on a user turn, a tool turn, or a
    /// call without its result, or its outcome is not `completed`, or plan steps are left.
    /// Passes: `user: hi / assistant: hello`. Fails: `user: hi / assistant: hello / user: and?`.
    Incomplete,
    /// No assistant turn calls a tool, or every call was answered with an error (`is_error`):
    /// a dialogue should show at least one call that worked; an error and its recovery pass.
    /// Passes: any dialogue with one call that succeeded. Fails: `user: hi / assistant:
    /// hello`, or a lone call answered `{"error": "Service unavailable"}`.
    NoToolCall,
    /// A user turn with blank text, or an assistant turn with neither text nor calls.
    /// Passes: `user: hi`. Fails: `user: "   "`.
    EmptyTurn,
    /// A turn whose text (trimmed) equals that of the previous turn of the same role.
    /// Passes: `assistant: Done. / … / assistant: Anything else?`. Fails: `assistant: Done.
    /// / … / assistant: Done.`.
    RepeatedTurn,
    /// Assistant text that is, or holds, a tool call that should have been structured: JSON
    /// (or a Python dict) with a `name` and `arguments`/`parameters`, a chat template's call
    /// marker (`<tool_call>`, `[TOOL_CALLS]`, `<|python_tag|>`, `<function=`), a call to
    /// `functions.x(...)`, or `tool(...)` written in code for a tool of the dialogue.
    /// Passes: `assistant: It is 21 degrees in Lyon.`. Fails: `assistant: {"name":
    /// "get_weather", "arguments": {"city": "Lyon"}}`.
    CallInText,
    /// Assistant text that is a whole JSON object or array (a fenced block counts): an answer
    /// written for a machine, typically an error blob copied from a result. JSON that is a
    /// call is left to [`Rule::CallInText`].
    /// Passes: `assistant: The service is down, try later.`. Fails: `assistant: {"error":
    /// "Service unavailable"}`.
    JsonAnswer,
    /// Template residue in a turn's text, a call's string arguments or a result's strings:
    /// `{{var}}`, lorem ipsum, a `TODO`, a `[slot]` bracket (a slot word such as `[name]`,
    /// snake_case such as `[email_address]`, or an instruction such as `[Your Name]`), or an
    /// instruction in angle brackets (`<a short error message>`, or one that opens a string
    /// and is cut before its bracket closes); or a call argument whose
    /// value is its parameter's own description (of three words or more). Brackets holding
    /// data (`[1]`, `[Draft]`, markdown links, HTML tags, `x < 5 and y > 3`) pass.
    /// Passes: `assistant: Sent to Ana at ana@example.org`. Fails: `assistant: Sending Mail
    /// to [name] at [email_address]`.
    Placeholder,
    /// A turn whose generation stopped at the token limit (`finish_reason` is `length`):
    /// its text is cut off; or an assistant answer (with no call) that stops mid-sentence,
    /// on a comma, colon or semicolon. Passes: `finish_reason: stop`. Fails:
    /// `finish_reason: length` on `user: Can you check the weather in Lyon for the`, or
    /// `assistant: You can call this tool:`.
    Truncated,
    /// A user or assistant turn of at least 8 words dominated by repetition (half its word
    /// trigrams repeat an earlier one of the turn, or one word is half its words), or one
    /// whose word trigrams are, for 70% or more, those of an earlier turn of the other role
    /// (a user parroting the assistant, an assistant echoing the request); an assistant
    /// answer that is word for word an error message (of 4 words or more) of the results
    /// before it; also a call's string argument dominated by repetition.
    /// Passes: `assistant: Sunny and 21 degrees in Lyon tomorrow, with a light breeze.`.
    /// Fails: `assistant: I can help with that. I can help with that. I can help with that.`.
    Degenerate,
    /// A user turn that steps out of the user's part: it speaks as the assistant (`how can I
    /// help you`, `I'm here to help you`), or in the words of its instructions (`completed
    /// steps`, the user in the third person: `the user's calendar`, `the user requested`).
    /// Passes: `user: Can you help me book a table for two?`. Fails: `user: Hello, I am here
    /// to help you find the perfect product.`.
    OutOfRole,
    /// A tool result (not an error) that breaks the tool's `returns` JSON Schema.
    /// Passes: `{"temp": 21}` for `returns: {properties: {temp: {type: number}}}`. Fails:
    /// `{"temp": "warm"}`.
    ResultSchema,
    /// The assistant's first text after tool results of a round shares no value with them:
    /// no number (numbers written in result strings count, so `2024-05-14` gives 14), no
    /// string of 3 to 40 characters, no word of 5 or more letters of a longer string.
    /// Rounds whose results are errors or hold no value are exempt. `warn` by default:
    /// an answer may rightly paraphrase.
    /// Passes: result `{"temp": 21}`, `assistant: 21 degrees.`. Fails: `assistant: It is
    /// lovely weather.`.
    UngroundedAnswer,
    /// The first user turn of a tool-call plan step is far from that step's request: the
    /// cosine of their sentence embeddings is below `[off-plan] threshold`. Later turns of
    /// the step answer the assistant's questions, and chitchat steps are free small talk:
    /// neither is compared. Needs an embedding function;
    /// `warn` by default. Passes: step `Check the weather in Lyon`, `user: What's the
    /// weather like in Lyon?`. Fails: `user: Tell me a joke about cats.`.
    OffPlan,
    /// A data-flow link planned for the dialogue (its chain subset's `links`) was not
    /// realised: no call of the consumer passed, as the parameter, a value of the producer's
    /// earlier result (`DialogueLink.realised`, decided when the dialogue was written).
    /// `warn` by default: the dialogue may be good without following the chain.
    /// Passes: link `search_person.results[].id → person_films.person_id`, result
    /// `{"results": [{"id": 7021}]}`, then `person_films {"person_id": 7021}`. Fails: the same
    /// link and `person_films` never called, or called with `{"person_id": 12}`.
    UnrealisedLink,
    /// The same turns (generation metadata aside) as an earlier kept dialogue.
    /// Passes: the first copy. Fails: the second.
    ExactDuplicate,
    /// MinHash-estimated Jaccard similarity of word shingles to an earlier kept dialogue at or
    /// above the threshold. Passes: the first of two dialogues differing by one word. Fails:
    /// the second.
    NearDuplicate,
    /// The LLM judge (Table 15), asked about every dialogue that passed the other rules,
    /// scored it below the filter's `judge-min` (overall: the mean of the four criteria; or
    /// per criterion). Checked only when `judge-min` is set.
    /// Passes: scores 4/4/5/4 against `judge-min = 3`. Fails: 2/3/2/2.
    Judge,
}

impl Rule {
    /// Every rule, in the order reports list them.
    pub const ALL: [Rule; 23] = [
        Rule::UnparsedArguments,
        Rule::UnknownTool,
        Rule::SchemaViolation,
        Rule::MissingRequired,
        Rule::UngroundedArgument,
        Rule::ResultNotJson,
        Rule::Incomplete,
        Rule::NoToolCall,
        Rule::EmptyTurn,
        Rule::RepeatedTurn,
        Rule::CallInText,
        Rule::JsonAnswer,
        Rule::Placeholder,
        Rule::Truncated,
        Rule::Degenerate,
        Rule::OutOfRole,
        Rule::ResultSchema,
        Rule::UngroundedAnswer,
        Rule::OffPlan,
        Rule::UnrealisedLink,
        Rule::ExactDuplicate,
        Rule::NearDuplicate,
        Rule::Judge,
    ];

    /// The rule's name in rules files and reports.
    pub fn id(self) -> &'static str {
        match self {
            Rule::UnparsedArguments => "unparsed-arguments",
            Rule::UnknownTool => "unknown-tool",
            Rule::SchemaViolation => "schema-violation",
            Rule::MissingRequired => "missing-required",
            Rule::UngroundedArgument => "ungrounded-argument",
            Rule::ResultNotJson => "result-not-json",
            Rule::Incomplete => "incomplete",
            Rule::NoToolCall => "no-tool-call",
            Rule::EmptyTurn => "empty-turn",
            Rule::RepeatedTurn => "repeated-turn",
            Rule::CallInText => "call-in-text",
            Rule::JsonAnswer => "json-answer",
            Rule::Placeholder => "placeholder",
            Rule::Truncated => "truncated",
            Rule::Degenerate => "degenerate",
            Rule::OutOfRole => "out-of-role",
            Rule::ResultSchema => "result-schema",
            Rule::UngroundedAnswer => "ungrounded-answer",
            Rule::OffPlan => "off-plan",
            Rule::UnrealisedLink => "unrealised-link",
            Rule::ExactDuplicate => "exact-duplicate",
            Rule::NearDuplicate => "near-duplicate",
            Rule::Judge => "judge",
        }
    }

    /// The level a rule has when the rules file does not set one.
    pub fn default_level(self) -> Level {
        match self {
            Rule::UngroundedArgument
            | Rule::UngroundedAnswer
            | Rule::OffPlan
            | Rule::UnrealisedLink => Level::Warn,
            _ => Level::Reject,
        }
    }
}

/// How much a rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Not checked.
    Off,
    /// Reported, the dialogue kept.
    Warn,
    /// The dialogue rejected.
    Reject,
}

impl Level {
    /// The level's name in rules files and reports.
    pub fn id(self) -> &'static str {
        match self {
            Level::Off => "off",
            Level::Warn => "warn",
            Level::Reject => "reject",
        }
    }
}

/// One reason a dialogue was flagged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Reason {
    /// The rule that flagged it.
    pub rule: Rule,
    /// Its level in this filter run.
    pub level: Level,
    /// The index of the turn in `turns`, when one turn is at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<usize>,
    /// A JSON pointer into the dialogue record to the offending value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// What is wrong, in words.
    pub detail: String,
}
