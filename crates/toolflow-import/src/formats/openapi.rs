//! OpenAPI 3.x and Swagger 2.0: one tool per operation.
//!
//! - name: `operationId`, else `{method}_{path}` snake-cased (`get_albums_id_tracks`);
//! - description: the operation's `description`, else its `summary`;
//! - parameters: one object schema merging path, query and header parameters (path-level
//!   ones first, overridden by the operation's) and the request body's properties (a body
//!   that is not an object becomes one `body` property). A body field whose name a
//!   parameter already has is renamed `{location}_{name}` and the fix recorded. Where each
//!   parameter goes is kept in `meta.parameter_locations`. Cookie parameters are left out.
//! - returns: the schema of the first success response among `200`, `201`, then any other
//!   `2xx`, taking `application/json` (else another JSON type, else the first) content;
//!   null when it has none (e.g. `204`).
//!
//! Local `$ref`s (`#/...`) are inlined, memoised per reference. A reference that leads back
//! into itself is cut to `{"x-circular-ref": "#/..."}` (a schema that accepts anything) and
//! recorded in `meta.schema_fixes`; so is nesting deeper than [`MAX_REF_DEPTH`]. References
//! to other files or URLs, and local ones that point nowhere, skip the operation.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::{Entry, as_object, new_tool, problem};
use crate::document::{kind, pointer};
use crate::names::snake_case;
use crate::report::Issue;
use crate::report::Problem;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// How many `$ref`s deep a schema may nest before the rest is cut.
pub(crate) const MAX_REF_DEPTH: usize = 32;

/// Keys whose values are data, not schemas: a `$ref` inside them is not a reference.
const DATA_KEYS: [&str; 5] = ["example", "examples", "default", "enum", "const"];

pub(crate) fn read(value: &Value, out: &mut Vec<Entry>) {
    let root = match as_object(value, "", "an OpenAPI document (an object)") {
        Ok(root) => root,
        Err(problem) => return out.push(Entry::failed(String::new(), problem)),
    };
    let swagger = root.contains_key("swagger");
    let paths = match root.get("paths") {
        Some(Value::Object(paths)) => paths,
        Some(other) => {
            let message = format!("`paths` must be an object, found {}", kind(other));
            return out.push(Entry::failed(
                "/paths".into(),
                problem(Issue::WrongType, "/paths".into(), message),
            ));
        }
        None => {
            let message = "no `paths` object: not an OpenAPI 3.x or Swagger 2.0 document";
            return out.push(Entry::failed(
                String::new(),
                problem(Issue::WrongType, String::new(), message),
            ));
        }
    };
    let mut resolver = Resolver {
        root: value,
        cache: HashMap::new(),
        cuts: 0,
    };
    for (path, item) in paths {
        let item_at = pointer("/paths", path);
        let item = match resolver
            .follow(item, &item_at)
            .and_then(|item| as_object(item, &item_at, "a path item (an object)"))
        {
            Ok(item) => item,
            Err(problem) => {
                out.push(Entry::failed(item_at, problem));
                continue;
            }
        };
        let shared_parameters = item
            .get("parameters")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for (method, operation) in item
            .iter()
            .filter(|(method, _)| METHODS.contains(&method.as_str()))
        {
            let at = pointer(&item_at, method);
            let site = Site {
                swagger,
                path,
                method,
                at: &at,
                item_at: &item_at,
            };
            let mut fixes = Vec::new();
            out.push(
                match read_operation(
                    &mut resolver,
                    &site,
                    operation,
                    shared_parameters,
                    &mut fixes,
                ) {
                    Ok(tool) => Entry {
                        pointer: at,
                        outcome: Ok(tool),
                        fixes,
                    },
                    Err(problem) => Entry::failed(at, problem),
                },
            );
        }
    }
}

/// Where an operation sits.
struct Site<'a> {
    swagger: bool,
    path: &'a str,
    method: &'a str,
    at: &'a str,
    item_at: &'a str,
}

fn read_operation(
    resolver: &mut Resolver,
    site: &Site,
    operation: &Value,
    shared_parameters: &[Value],
    fixes: &mut Vec<String>,
) -> Result<toolflow_core::Tool, Problem> {
    let at = site.at;
    let operation = as_object(operation, at, "an operation (an object)")?;
    let name = match operation
        .get("operationId")
        .and_then(Value::as_str)
        .map(str::trim)
    {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => snake_case(&format!("{} {}", site.method, site.path)),
    };
    let text = |key: &str| {
        operation
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or("")
    };
    let description = if text("description").is_empty() {
        text("summary")
    } else {
        text("description")
    };

    let mut fields = Fields::default();
    for (parameter, parameter_at) in
        merged_parameters(resolver, site, operation, shared_parameters)?
    {
        let parameter = as_object(parameter, &parameter_at, "a parameter object")?;
        let name = super::name_field(parameter, "name", &parameter_at)?;
        let location = parameter
            .get("in")
            .and_then(Value::as_str)
            .unwrap_or("query");
        match location {
            "cookie" => continue,
            "body" => {
                let schema = parameter.get("schema").unwrap_or(&Value::Null);
                let schema = resolver.schema(schema, &pointer(&parameter_at, "schema"), fixes)?;
                let required = parameter.get("required") == Some(&Value::Bool(true));
                fields.add_body(schema, required, fixes);
                continue;
            }
            _ => {}
        }
        let mut schema = if site.swagger {
            swagger_parameter_schema(resolver, parameter, &parameter_at, fixes)?
        } else if let Some(schema) = parameter.get("schema") {
            resolver.schema(schema, &pointer(&parameter_at, "schema"), fixes)?
        } else if let Some((media, content)) = parameter
            .get("content")
            .and_then(Value::as_object)
            .and_then(pick_media_type)
        {
            let schema_at = pointer(
                &pointer(&pointer(&parameter_at, "content"), media),
                "schema",
            );
            resolver.schema(
                content.get("schema").unwrap_or(&Value::Null),
                &schema_at,
                fixes,
            )?
        } else {
            json!({})
        };
        if let (Some(Value::String(description)), Value::Object(map)) =
            (parameter.get("description"), &mut schema)
            && !description.trim().is_empty()
        {
            map.insert("description".into(), description.trim().into());
        }
        let required = match parameter.get("required") {
            Some(Value::Bool(required)) => *required,
            Some(Value::String(text)) => {
                fixes.push(format!("parameters.{name}.required:string->bool"));
                text.eq_ignore_ascii_case("true")
            }
            _ => false,
        } || location == "path";
        let location = if location == "formData" {
            "form"
        } else {
            location
        };
        fields.add(name, schema, required, location, fixes);
    }
    if let Some(body) = operation.get("requestBody") {
        let body_at = pointer(at, "requestBody");
        let body = resolver.follow(body, &body_at)?;
        let body = as_object(body, &body_at, "a request body (an object)")?;
        if let Some((media, content)) = body
            .get("content")
            .and_then(Value::as_object)
            .and_then(pick_media_type)
        {
            let schema_at = pointer(&pointer(&pointer(&body_at, "content"), media), "schema");
            let schema = resolver.schema(
                content.get("schema").unwrap_or(&Value::Null),
                &schema_at,
                fixes,
            )?;
            fields.add_body(
                schema,
                body.get("required") == Some(&Value::Bool(true)),
                fixes,
            );
        }
    }
    let returns = response_schema(resolver, site, operation, fixes)?;

    let mut parameters = json!({"type": "object", "properties": fields.properties});
    if !fields.required.is_empty() {
        parameters["required"] = Value::Array(fields.required);
    }
    let mut tool = new_tool(
        name,
        description.to_string(),
        parameters,
        returns,
        "openapi".into(),
    );
    tool.meta
        .insert("method".into(), site.method.to_ascii_uppercase().into());
    tool.meta.insert("path".into(), site.path.into());
    if !text("summary").is_empty() {
        tool.meta.insert("summary".into(), text("summary").into());
    }
    if let Some(tags) = operation.get("tags").filter(|tags| tags.is_array()) {
        tool.meta.insert("tags".into(), tags.clone());
    }
    if !fields.locations.is_empty() {
        tool.meta.insert(
            "parameter_locations".into(),
            Value::Object(fields.locations),
        );
    }
    Ok(tool)
}

/// Path-level parameters, then the operation's, which replace those of the same name and
/// location; each with its pointer, `$ref`s followed.
fn merged_parameters<'v>(
    resolver: &Resolver<'v>,
    site: &Site,
    operation: &'v Map<String, Value>,
    shared: &'v [Value],
) -> Result<Vec<(&'v Value, String)>, Problem> {
    let own = match operation.get("parameters") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(list)) => list.as_slice(),
        Some(other) => {
            let at = pointer(site.at, "parameters");
            return Err(problem(
                Issue::WrongType,
                at,
                format!("`parameters` must be a list, found {}", kind(other)),
            ));
        }
    };
    let mut merged: Vec<(&Value, String)> = Vec::new();
    let key = |parameter: &Value| (parameter.get("name").cloned(), parameter.get("in").cloned());
    for (list, list_at) in [
        (shared, pointer(site.item_at, "parameters")),
        (own, pointer(site.at, "parameters")),
    ] {
        for (index, parameter) in list.iter().enumerate() {
            let at = pointer(&list_at, index);
            let parameter = resolver.follow(parameter, &at)?;
            match merged
                .iter_mut()
                .find(|(seen, _)| key(seen) == key(parameter))
            {
                Some(slot) => *slot = (parameter, at),
                None => merged.push((parameter, at)),
            }
        }
    }
    Ok(merged)
}

/// A Swagger 2.0 non-body parameter carries its schema keywords itself.
fn swagger_parameter_schema(
    resolver: &mut Resolver,
    parameter: &Map<String, Value>,
    at: &str,
    fixes: &mut Vec<String>,
) -> Result<Value, Problem> {
    const NOT_SCHEMA: [&str; 7] = [
        "name",
        "in",
        "description",
        "required",
        "collectionFormat",
        "allowEmptyValue",
        "schema",
    ];
    let mut schema = Map::new();
    for (key, value) in parameter
        .iter()
        .filter(|(key, _)| !NOT_SCHEMA.contains(&key.as_str()) && !key.starts_with("x-"))
    {
        let value = if key == "items" {
            resolver.schema(value, &pointer(at, "items"), fixes)?
        } else {
            value.clone()
        };
        schema.insert(key.clone(), value);
    }
    Ok(Value::Object(schema))
}

/// The parameters object being assembled.
#[derive(Default)]
struct Fields {
    properties: Map<String, Value>,
    required: Vec<Value>,
    locations: Map<String, Value>,
}

impl Fields {
    fn add(
        &mut self,
        name: String,
        schema: Value,
        required: bool,
        location: &str,
        fixes: &mut Vec<String>,
    ) {
        let name = if self.properties.contains_key(&name) {
            let renamed = format!("{location}_{name}");
            fixes.push(format!(
                "parameters.{name}:{location}-field-clash->{renamed}"
            ));
            renamed
        } else {
            name
        };
        if required && !self.required.iter().any(|seen| seen == &name) {
            self.required.push(Value::String(name.clone()));
        }
        self.locations.insert(name.clone(), location.into());
        self.properties.insert(name, schema);
    }

    /// An object body contributes its properties; anything else is one `body` property.
    fn add_body(&mut self, schema: Value, body_required: bool, fixes: &mut Vec<String>) {
        match object_fields(&schema) {
            Some((properties, required)) => {
                for (name, property) in properties {
                    let is_required = required.iter().any(|seen| seen == &name);
                    self.add(name, property, is_required, "body", fixes);
                }
            }
            None if schema == Value::Null => {}
            None => self.add("body".into(), schema, body_required, "body", fixes),
        }
    }
}

/// The properties and required names of an object schema, through `allOf` as well.
fn object_fields(schema: &Value) -> Option<(Map<String, Value>, Vec<Value>)> {
    let map = schema.as_object()?;
    let declared_object = map.get("type").is_none_or(|kind| kind == "object");
    if !declared_object {
        return None;
    }
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut found = false;
    if let Some(Value::Object(own)) = map.get("properties") {
        properties.extend(own.clone());
        found = true;
    }
    if let Some(Value::Array(names)) = map.get("required") {
        required.extend(names.iter().cloned());
    }
    if let Some(Value::Array(parts)) = map.get("allOf") {
        for part in parts {
            let (part_properties, part_required) = object_fields(part)?;
            properties.extend(part_properties);
            required.extend(part_required);
            found = true;
        }
    }
    found.then_some((properties, required))
}

/// `application/json`, else another JSON media type, else the first one listed.
fn pick_media_type(content: &Map<String, Value>) -> Option<(&String, &Value)> {
    content
        .iter()
        .find(|(media, _)| media.as_str() == "application/json")
        .or_else(|| content.iter().find(|(media, _)| media.contains("json")))
        .or_else(|| content.iter().next())
}

fn response_schema(
    resolver: &mut Resolver,
    site: &Site,
    operation: &Map<String, Value>,
    fixes: &mut Vec<String>,
) -> Result<Option<Value>, Problem> {
    let Some(Value::Object(responses)) = operation.get("responses") else {
        return Ok(None);
    };
    let is_success = |code: &str| {
        code.len() == 3
            && code.starts_with('2')
            && code[1..]
                .chars()
                .all(|c| c.is_ascii_digit() || c == 'X' || c == 'x')
    };
    let code = ["200", "201"]
        .into_iter()
        .find(|code| responses.contains_key(*code))
        .or_else(|| {
            responses
                .keys()
                .map(String::as_str)
                .find(|code| is_success(code))
        });
    let Some(code) = code else { return Ok(None) };
    let response_at = pointer(&pointer(site.at, "responses"), code);
    let response = resolver.follow(&responses[code], &response_at)?;
    let Some(response) = response.as_object() else {
        return Ok(None);
    };
    if site.swagger {
        return match response.get("schema") {
            Some(schema) => resolver
                .schema(schema, &pointer(&response_at, "schema"), fixes)
                .map(Some),
            None => Ok(None),
        };
    }
    let Some((media, content)) = response
        .get("content")
        .and_then(Value::as_object)
        .and_then(pick_media_type)
    else {
        return Ok(None);
    };
    match content.get("schema") {
        Some(schema) => {
            let schema_at = pointer(&pointer(&pointer(&response_at, "content"), media), "schema");
            resolver.schema(schema, &schema_at, fixes).map(Some)
        }
        None => Ok(None),
    }
}

/// Local `$ref` resolution over one document.
struct Resolver<'v> {
    root: &'v Value,
    /// Fully inlined targets, for references whose expansion cut no cycle.
    cache: HashMap<String, Value>,
    /// How many cycles have been cut so far (to know whether an expansion may be cached).
    cuts: usize,
}

impl<'v> Resolver<'v> {
    /// The value a local reference points to.
    fn lookup(&self, reference: &str, at: &str) -> Result<&'v Value, Problem> {
        let bad = |message: String| problem(Issue::BadReference, pointer(at, "$ref"), message);
        let Some(target) = reference.strip_prefix('#') else {
            return Err(bad(format!(
                "`$ref` to `{reference}` is not supported: only local references (`#/...`) are"
            )));
        };
        let target = percent_decode(target);
        self.root.pointer(&target).ok_or_else(|| {
            bad(format!(
                "`$ref` to `{reference}` points nowhere in the document"
            ))
        })
    }

    /// Follows `$ref` chains on a parameter, response, request body or path item.
    fn follow(&self, mut value: &'v Value, at: &str) -> Result<&'v Value, Problem> {
        let mut seen: Vec<&str> = Vec::new();
        while let Some(reference) = value.get("$ref").and_then(Value::as_str) {
            if seen.contains(&reference) || seen.len() > MAX_REF_DEPTH {
                return Err(problem(
                    Issue::BadReference,
                    pointer(at, "$ref"),
                    format!("`$ref` chain through `{reference}` never ends"),
                ));
            }
            seen.push(reference);
            value = self.lookup(reference, at)?;
        }
        Ok(value)
    }

    /// `schema` with every local `$ref` inlined.
    fn schema(
        &mut self,
        schema: &Value,
        at: &str,
        fixes: &mut Vec<String>,
    ) -> Result<Value, Problem> {
        self.inline(schema, at, &mut Vec::new(), fixes)
    }

    fn inline(
        &mut self,
        value: &Value,
        at: &str,
        stack: &mut Vec<String>,
        fixes: &mut Vec<String>,
    ) -> Result<Value, Problem> {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    let mut resolved = self.expand(reference, at, stack, fixes)?;
                    if let Value::Object(resolved) = &mut resolved {
                        for (key, sibling) in map.iter().filter(|(key, _)| *key != "$ref") {
                            let sibling = self.inline_field(key, sibling, at, stack, fixes)?;
                            resolved.insert(key.clone(), sibling);
                        }
                    }
                    return Ok(resolved);
                }
                let mut out = Map::with_capacity(map.len());
                for (key, field) in map {
                    out.insert(
                        key.clone(),
                        self.inline_field(key, field, at, stack, fixes)?,
                    );
                }
                Ok(Value::Object(out))
            }
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    out.push(self.inline(item, &pointer(at, index), stack, fixes)?);
                }
                Ok(Value::Array(out))
            }
            other => Ok(other.clone()),
        }
    }

    fn inline_field(
        &mut self,
        key: &str,
        field: &Value,
        at: &str,
        stack: &mut Vec<String>,
        fixes: &mut Vec<String>,
    ) -> Result<Value, Problem> {
        if DATA_KEYS.contains(&key) {
            Ok(field.clone())
        } else {
            self.inline(field, &pointer(at, key), stack, fixes)
        }
    }

    fn expand(
        &mut self,
        reference: &str,
        at: &str,
        stack: &mut Vec<String>,
        fixes: &mut Vec<String>,
    ) -> Result<Value, Problem> {
        if stack.iter().any(|open| open == reference) || stack.len() >= MAX_REF_DEPTH {
            let why = if stack.len() >= MAX_REF_DEPTH {
                "nesting-too-deep"
            } else {
                "cycle"
            };
            let fix = format!("{at}:$ref-{why}:{reference}->{{}}");
            if !fixes.contains(&fix) {
                fixes.push(fix);
            }
            tracing::debug!(%reference, at, "cut a $ref {why}");
            self.cuts += 1;
            return Ok(json!({"x-circular-ref": reference}));
        }
        if let Some(done) = self.cache.get(reference) {
            return Ok(done.clone());
        }
        let target = self.lookup(reference, at)?;
        let cuts_before = self.cuts;
        stack.push(reference.to_string());
        let resolved = self.inline(target, reference.trim_start_matches('#'), stack, fixes);
        stack.pop();
        let resolved = resolved?;
        if self.cuts == cuts_before {
            self.cache.insert(reference.to_string(), resolved.clone());
        }
        Ok(resolved)
    }
}

/// `%7B` → `{` in a reference, as URI fragments may escape characters.
fn percent_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[index], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                index += 3;
            }
            (byte, _) => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
