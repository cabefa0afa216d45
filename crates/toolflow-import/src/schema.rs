//! Making every `parameters` and `returns` a valid JSON Schema (draft 2020-12): small known
//! problems are repaired and recorded (`meta.schema_fixes`, in the shared corpus's
//! `path.keyword:before->after` style); anything still invalid is reported with its place.

use serde_json::{Map, Value};
use toolflow_core::Tool;
use toolflow_core::tool::empty_object_schema;

use crate::document::kind;
use crate::report::Issue;
use crate::report::Problem;

/// Keywords whose value is a number (OpenAPI documents sometimes quote them: `"50"`).
const NUMERIC: [&str; 12] = [
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minContains",
];

/// Keywords whose value is (or may be) a boolean, and which sources sometimes write `"true"`.
const BOOLEAN: [&str; 8] = [
    "deprecated",
    "readOnly",
    "writeOnly",
    "uniqueItems",
    "additionalProperties",
    "unevaluatedProperties",
    "additionalItems",
    "unevaluatedItems",
];

/// Keywords whose value is one subschema.
const SUBSCHEMA: [&str; 11] = [
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "additionalItems",
];
/// Keywords whose value is a list of subschemas.
const SUBSCHEMA_LISTS: [&str; 4] = ["allOf", "anyOf", "oneOf", "prefixItems"];
/// Keywords whose value maps names to subschemas (`properties` is handled on its own).
const SUBSCHEMA_MAPS: [&str; 4] = [
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];

/// Repairs and validates a tool's schemas in place; returns the fixes made.
pub(crate) fn normalize(tool: &mut Tool) -> Result<Vec<String>, Problem> {
    let mut fixes = Vec::new();
    match &mut tool.parameters {
        Value::Null => tool.parameters = empty_object_schema(),
        Value::Bool(true) => {
            tool.parameters = empty_object_schema();
            fixes.push("parameters:true->empty object".to_string());
        }
        Value::Object(_) => {
            repair(&mut tool.parameters, "parameters", &mut fixes);
            ensure_object_schema(&mut tool.parameters, &mut fixes)?;
        }
        other => {
            return Err(problem(
                Issue::WrongType,
                format!(
                    "`parameters` must be a JSON Schema object, found {}",
                    kind(other)
                ),
            ));
        }
    }
    match &mut tool.returns {
        None | Some(Value::Null) => tool.returns = None,
        Some(returns @ (Value::Object(_) | Value::Bool(_))) => {
            repair(returns, "returns", &mut fixes)
        }
        Some(other) => {
            return Err(problem(
                Issue::WrongType,
                format!(
                    "`returns` must be a JSON Schema object or null, found {}",
                    kind(other)
                ),
            ));
        }
    }
    validate(&tool.parameters, "parameters")?;
    if let Some(returns) = &tool.returns {
        validate(returns, "returns")?;
    }
    Ok(fixes)
}

fn problem(issue: Issue, message: String) -> Problem {
    Problem {
        issue,
        pointer: String::new(),
        message,
    }
}

/// The top level of `parameters` must describe an object: a missing `type` is added when
/// nothing says otherwise; any other type is refused.
fn ensure_object_schema(parameters: &mut Value, fixes: &mut Vec<String>) -> Result<(), Problem> {
    let map = parameters.as_object_mut().expect("checked by the caller");
    match map.get("type") {
        None => {
            let mut with_type = Map::with_capacity(map.len() + 1);
            with_type.insert("type".into(), "object".into());
            with_type.extend(std::mem::take(map));
            *map = with_type;
            fixes.push("parameters.type:missing->object".to_string());
            Ok(())
        }
        Some(Value::String(name)) if name == "object" => Ok(()),
        Some(Value::Array(names)) if names.iter().any(|name| name == "object") => Ok(()),
        Some(other) => Err(problem(
            Issue::NonObjectParameters,
            format!("`parameters` must describe an object, but its type is {other}"),
        )),
    }
}

/// Checks `schema` against its meta-schema (a cached validator, cheap), then, only when it
/// has `$ref`s, compiles it to check they resolve (costly, so not for every schema).
fn validate(schema: &Value, what: &str) -> Result<(), Problem> {
    let invalid = |error: jsonschema::ValidationError| {
        let at = error.instance_path().to_string();
        let at = if at.is_empty() {
            String::new()
        } else {
            format!(" at {at}")
        };
        problem(
            Issue::InvalidSchema,
            format!("`{what}` is not a valid JSON Schema{at}: {error}"),
        )
    };
    let meta = jsonschema::meta::validator_for(schema).map_err(invalid)?;
    meta.validate(schema)
        .map_err(|error| invalid(error.to_owned()))?;
    if has_reference(schema) {
        jsonschema::validator_for(schema).map_err(invalid)?;
    }
    Ok(())
}

fn has_reference(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            map.contains_key("$ref")
                || map.contains_key("$dynamicRef")
                || map.values().any(has_reference)
        }
        Value::Array(items) => items.iter().any(has_reference),
        _ => false,
    }
}

/// The JSON Schema type for a type name the sources use; `None` for unknown names.
fn canonical_type(name: &str) -> Option<&'static str> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "string" | "str" | "text" | "char" | "character" => "string",
        "integer" | "int" | "long" | "short" | "byte" | "bigint" => "integer",
        "number" | "float" | "double" | "decimal" | "numeric" => "number",
        "boolean" | "bool" => "boolean",
        "object" | "dict" | "map" | "hashmap" => "object",
        "array" | "list" | "tuple" | "arraylist" | "set" => "array",
        "null" | "none" | "nonetype" => "null",
        _ => return None,
    })
}

/// Fixes, recursively, what sources commonly get wrong: type names (`Boolean`, `str`,
/// `dict`, Swagger's `file`), empty or unknown types (unknown ones move to
/// `x-original-type`), scalar `examples`/`enum`, non-string descriptions, draft-4 boolean
/// `exclusiveMinimum`/`exclusiveMaximum`, numbers and booleans written as strings, tuple-form `items`, property-level
/// `required: true`, and `required` lists with non-strings or repeats.
pub(crate) fn repair(schema: &mut Value, path: &str, fixes: &mut Vec<String>) {
    let Value::Object(map) = schema else { return };
    repair_type(map, path, fixes);
    for keyword in ["examples", "enum"] {
        if let Some(value) = map.get_mut(keyword).filter(|value| !value.is_array()) {
            *value = Value::Array(vec![value.take()]);
            fixes.push(format!("{path}.{keyword}:scalar->list"));
        }
    }
    match map.get("description") {
        Some(Value::String(_)) | None => {}
        Some(Value::Null) => {
            map.remove("description");
            fixes.push(format!("{path}.description:null->dropped"));
        }
        Some(other) => {
            let text = match other {
                Value::Number(_) | Value::Bool(_) => other.to_string(),
                _ => serde_json::to_string(other).unwrap_or_default(),
            };
            map.insert("description".into(), text.into());
            fixes.push(format!(
                "{path}.description:{}->string",
                kind_word(&map["description"])
            ));
        }
    }
    if map.get("format").is_some_and(|format| !format.is_string()) {
        map.remove("format");
        fixes.push(format!("{path}.format:non-string->dropped"));
    }
    for (keyword, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if let Some(Value::Bool(exclusive)) = map.get(keyword).cloned() {
            map.remove(keyword);
            if exclusive && let Some(limit) = map.remove(bound) {
                map.insert(keyword.into(), limit);
            }
            fixes.push(format!("{path}.{keyword}:bool->number"));
        }
    }
    for keyword in NUMERIC {
        let Some(Value::String(text)) = map.get(keyword) else {
            continue;
        };
        match text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| text.trim().parse::<f64>().map(Value::from))
        {
            Ok(number) if number.is_number() => {
                map.insert(keyword.into(), number);
                fixes.push(format!("{path}.{keyword}:string->number"));
            }
            _ => {}
        }
    }
    for keyword in BOOLEAN {
        let Some(Value::String(text)) = map.get(keyword) else {
            continue;
        };
        if let Ok(flag) = text.trim().to_ascii_lowercase().parse::<bool>() {
            map.insert(keyword.into(), flag.into());
            fixes.push(format!("{path}.{keyword}:string->bool"));
        }
    }
    if map.get("items").is_some_and(Value::is_array) && !map.contains_key("prefixItems") {
        let items = map.remove("items").expect("checked");
        map.insert("prefixItems".into(), items);
        fixes.push(format!("{path}.items:list->prefixItems"));
    }
    repair_required_list(map, path, fixes);
    repair_properties(map, path, fixes);
    for keyword in SUBSCHEMA {
        if let Some(sub) = map.get_mut(keyword) {
            repair(sub, &format!("{path}.{keyword}"), fixes);
        }
    }
    for keyword in SUBSCHEMA_LISTS {
        if let Some(Value::Array(list)) = map.get_mut(keyword) {
            for (index, sub) in list.iter_mut().enumerate() {
                repair(sub, &format!("{path}.{keyword}.{index}"), fixes);
            }
        }
    }
    for keyword in SUBSCHEMA_MAPS {
        if let Some(Value::Object(subs)) = map.get_mut(keyword) {
            for (name, sub) in subs.iter_mut() {
                repair(sub, &format!("{path}.{keyword}.{name}"), fixes);
            }
        }
    }
}

fn kind_word(value: &Value) -> &'static str {
    match value {
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        _ => "json",
    }
}

fn repair_type(map: &mut Map<String, Value>, path: &str, fixes: &mut Vec<String>) {
    let Some(declared) = map.get("type") else {
        return;
    };
    match declared {
        Value::String(name) => {
            let name = name.clone();
            if name.trim().is_empty() {
                map.remove("type");
                fixes.push(format!("{path}.type:empty->dropped"));
            } else if name.eq_ignore_ascii_case("file") {
                map.insert("type".into(), "string".into());
                map.entry("format").or_insert_with(|| "binary".into());
                fixes.push(format!("{path}.type:{name}->string"));
            } else if name.eq_ignore_ascii_case("any") {
                map.remove("type");
                fixes.push(format!("{path}.type:{name}->dropped"));
            } else {
                match canonical_type(&name) {
                    Some(canonical) if canonical == name => {}
                    Some(canonical) => {
                        map.insert("type".into(), canonical.into());
                        fixes.push(format!("{path}.type:{name}->{canonical}"));
                    }
                    None => {
                        let original = map.remove("type").expect("present");
                        map.insert("x-original-type".into(), original);
                        fixes.push(format!("{path}.type:{name}->x-original-type"));
                    }
                }
            }
        }
        Value::Array(names) => {
            let mut canonical: Vec<Value> = Vec::new();
            for name in names {
                if let Some(known) = name.as_str().and_then(canonical_type)
                    && !canonical.iter().any(|seen| seen == known)
                {
                    canonical.push(known.into());
                }
            }
            if &canonical != names {
                let before = Value::Array(names.clone()).to_string();
                if canonical.is_empty() {
                    map.remove("type");
                } else {
                    map.insert("type".into(), Value::Array(canonical));
                }
                fixes.push(format!(
                    "{path}.type:{before}->{}",
                    map.get("type").map_or("dropped".into(), Value::to_string)
                ));
            }
        }
        other => {
            let before = kind_word(other);
            let original = map.remove("type").expect("present");
            map.insert("x-original-type".into(), original);
            fixes.push(format!("{path}.type:{before}->x-original-type"));
        }
    }
}

fn repair_required_list(map: &mut Map<String, Value>, path: &str, fixes: &mut Vec<String>) {
    let Some(required) = map.get("required") else {
        return;
    };
    let names: Vec<Value> = match required {
        // `required: true` on a property is handled by its parent; here it is misplaced.
        Value::Bool(_) => return,
        Value::String(name) => {
            fixes.push(format!("{path}.required:string->list"));
            vec![Value::String(name.clone())]
        }
        Value::Array(list) => {
            let mut names: Vec<Value> = Vec::with_capacity(list.len());
            for name in list.iter().filter(|name| name.is_string()) {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
            if names.len() == list.len() {
                return;
            }
            fixes.push(format!("{path}.required:non-strings-or-repeats->dropped"));
            names
        }
        _ => {
            fixes.push(format!("{path}.required:{}->dropped", kind_word(required)));
            map.remove("required");
            return;
        }
    };
    map.insert("required".into(), Value::Array(names));
}

/// Repairs each property and lifts draft-3 style `required: true` flags into the parent's
/// `required` list; a bare type name as a property's schema becomes `{"type": ...}`.
fn repair_properties(map: &mut Map<String, Value>, path: &str, fixes: &mut Vec<String>) {
    let Some(Value::Object(properties)) = map.get_mut("properties") else {
        return;
    };
    let mut lifted = Vec::new();
    for (name, property) in properties.iter_mut() {
        let property_path = format!("{path}.{name}");
        if let Value::String(type_name) = property {
            *property = serde_json::json!({"type": type_name.clone()});
            fixes.push(format!("{property_path}:string->schema"));
        }
        if let Value::Object(fields) = property
            && let Some(Value::Bool(flag)) = fields.get("required").cloned()
        {
            fields.remove("required");
            if flag {
                lifted.push(name.clone());
            }
            fixes.push(format!("{property_path}.required:bool->parent.required"));
        }
        repair(property, &property_path, fixes);
    }
    if lifted.is_empty() {
        return;
    }
    let required = map
        .entry("required")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = required {
        for name in lifted {
            if !list.iter().any(|seen| seen == &name) {
                list.push(name.into());
            }
        }
    }
}

/// Calls `visit` on every subschema of `schema` (itself included), parents first.
pub(crate) fn visit_subschemas(
    schema: &mut Value,
    visit: &mut impl FnMut(&mut Map<String, Value>),
) {
    let Value::Object(map) = schema else { return };
    visit(map);
    if let Some(Value::Object(properties)) = map.get_mut("properties") {
        for property in properties.values_mut() {
            visit_subschemas(property, visit);
        }
    }
    for keyword in SUBSCHEMA {
        if let Some(sub) = map.get_mut(keyword) {
            visit_subschemas(sub, visit);
        }
    }
    for keyword in SUBSCHEMA_LISTS {
        if let Some(Value::Array(list)) = map.get_mut(keyword) {
            list.iter_mut().for_each(|sub| visit_subschemas(sub, visit));
        }
    }
    for keyword in SUBSCHEMA_MAPS {
        if let Some(Value::Object(subs)) = map.get_mut(keyword) {
            subs.values_mut()
                .for_each(|sub| visit_subschemas(sub, visit));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(parameters: Value, returns: Option<Value>) -> Tool {
        Tool {
            name: "t".into(),
            description: String::new(),
            parameters,
            returns,
            source: String::new(),
            meta: Map::new(),
        }
    }

    #[test]
    fn known_problems_are_repaired_and_recorded() {
        let mut t = tool(
            json!({"properties": {
                "flag": {"type": "Boolean", "required": true},
                "kind": {"type": "", "examples": "x", "deprecated": "true"},
                "n": {"type": "int", "minimum": 0, "exclusiveMinimum": true, "maxLength": "5"},
                "pair": {"type": "array", "items": [{"type": "string"}, {"type": "float"}]},
                "odd": {"type": "str_or_none", "description": 3}
            }}),
            Some(json!({"type": "dict", "properties": {"when": "string"}})),
        );
        let fixes = normalize(&mut t).unwrap();
        let p = &t.parameters;
        assert_eq!(p["type"], "object");
        assert_eq!(p["required"], json!(["flag"]));
        assert_eq!(p["properties"]["flag"], json!({"type": "boolean"}));
        assert_eq!(
            p["properties"]["kind"],
            json!({"examples": ["x"], "deprecated": true})
        );
        assert_eq!(
            p["properties"]["n"],
            json!({"type": "integer", "exclusiveMinimum": 0, "maxLength": 5})
        );
        assert_eq!(p["properties"]["pair"]["prefixItems"][1]["type"], "number");
        assert_eq!(p["properties"]["odd"]["x-original-type"], "str_or_none");
        assert_eq!(p["properties"]["odd"]["description"], "3");
        assert_eq!(
            t.returns.as_ref().unwrap()["properties"]["when"],
            json!({"type": "string"})
        );
        assert!(
            fixes.contains(&"parameters.flag.type:Boolean->boolean".to_string()),
            "{fixes:?}"
        );
        assert!(
            fixes.contains(&"parameters.kind.type:empty->dropped".to_string()),
            "{fixes:?}"
        );
        assert!(
            fixes.contains(&"parameters.type:missing->object".to_string()),
            "{fixes:?}"
        );
        assert!(
            fixes.contains(&"returns.type:dict->object".to_string()),
            "{fixes:?}"
        );
    }

    #[test]
    fn unrepairable_schemas_are_refused_with_the_place() {
        let mut t = tool(
            json!({"type": "object", "properties": {"a": {"type": "string", "minLength": "three"}}}),
            None,
        );
        let error = normalize(&mut t).unwrap_err();
        assert_eq!(error.issue, Issue::InvalidSchema);
        assert!(
            error.message.contains("/properties/a/minLength"),
            "{}",
            error.message
        );

        let mut t = tool(json!({"type": "string"}), None);
        assert_eq!(
            normalize(&mut t).unwrap_err().issue,
            Issue::NonObjectParameters
        );
        let mut t = tool(json!("city: string"), None);
        let error = normalize(&mut t).unwrap_err();
        assert_eq!(error.issue, Issue::WrongType);
        assert!(
            error.message.contains("found a string"),
            "{}",
            error.message
        );
        let mut t = tool(
            json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}),
            None,
        );
        assert_eq!(normalize(&mut t).unwrap_err().issue, Issue::InvalidSchema);
    }

    #[test]
    fn valid_schemas_pass_untouched() {
        let parameters = json!({"type": "object", "properties": {"a": {"type": ["string", "null"]}}, "required": ["a"]});
        let mut t = tool(parameters.clone(), Some(json!(true)));
        assert!(normalize(&mut t).unwrap().is_empty());
        assert_eq!(t.parameters, parameters);
        let mut t = tool(Value::Null, Some(Value::Null));
        normalize(&mut t).unwrap();
        assert_eq!(t.parameters, empty_object_schema());
        assert_eq!(t.returns, None);
    }
}
