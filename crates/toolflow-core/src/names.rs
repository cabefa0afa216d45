//! Settings read by name on the command line: each enum parses from the name it has in
//! the records and configs (kebab-case), so the CLI, the TOML and the JSON agree.

use std::str::FromStr;

use serde::de::DeserializeOwned;

use crate::graph::GraphMethod;
use crate::subset::SamplingStrategy;

/// The unit variant of `T` serialised as `name`, else an error listing `choices`.
fn by_name<T: DeserializeOwned>(name: &str, choices: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
        .map_err(|_| format!("`{name}` is none of {choices}"))
}

impl FromStr for GraphMethod {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        by_name(name, "paper, flow")
    }
}

impl FromStr for SamplingStrategy {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        by_name(name, "graph, chain, random")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_from_their_record_names() {
        assert_eq!("flow".parse(), Ok(GraphMethod::Flow));
        assert_eq!("chain".parse(), Ok(SamplingStrategy::Chain));
        assert_eq!("random".parse(), Ok(SamplingStrategy::Random));
        let error = "walk".parse::<SamplingStrategy>().unwrap_err();
        assert!(error.contains("graph, chain, random"), "{error}");
    }
}
