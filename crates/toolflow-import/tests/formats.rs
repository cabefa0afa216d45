//! Each format on a small fixture written for it (tests/fixtures/).

use std::path::PathBuf;

use serde_json::json;
use toolflow_core::Tool;
use toolflow_import::{Format, ImportOptions, ImportReport, Issue, import_paths};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn import(names: &[&str]) -> ImportReport {
    let paths: Vec<PathBuf> = names.iter().map(|name| fixture(name)).collect();
    let report = import_paths(&paths, &ImportOptions::default()).unwrap();
    assert_all_valid(&report.tools);
    report
}

fn tool<'a>(report: &'a ImportReport, name: &str) -> &'a Tool {
    let names: Vec<&str> = report.tools.iter().map(|tool| tool.name.as_str()).collect();
    report
        .tools
        .iter()
        .find(|tool| tool.name == name)
        .unwrap_or_else(|| panic!("no tool `{name}` among {names:?}"))
}

/// Every name is a valid OpenAI function name and every schema compiles.
fn assert_all_valid(tools: &[Tool]) {
    for tool in tools {
        let name_ok = (1..=64).contains(&tool.name.len())
            && tool
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        assert!(name_ok, "invalid name {:?}", tool.name);
        assert_eq!(tool.parameters["type"], "object", "{}", tool.name);
        jsonschema::validator_for(&tool.parameters)
            .unwrap_or_else(|e| panic!("{}: {e}", tool.name));
        if let Some(returns) = &tool.returns {
            jsonschema::validator_for(returns).unwrap_or_else(|e| panic!("{}: {e}", tool.name));
        }
        assert!(tool.meta["origin"].is_string(), "{}", tool.name);
    }
}

#[test]
fn openai_lists_with_and_without_the_wrapper() {
    let report = import(&["openai_tools.json"]);
    let names: Vec<&str> = report.tools.iter().map(|tool| tool.name.as_str()).collect();
    assert_eq!(names, ["get_weather", "convert_currency", "ping"]);
    let weather = tool(&report, "get_weather");
    assert_eq!(weather.source, "openai");
    assert_eq!(weather.required_parameters(), ["city"]);
    assert_eq!(weather.meta["strict"], true);
    assert!(
        weather.meta["origin"]
            .as_str()
            .unwrap()
            .ends_with("openai_tools.json")
    );
    assert_eq!(
        tool(&report, "ping").parameters,
        json!({"type": "object", "properties": {}})
    );
    // The `web_search` entry is not a function: skipped, with its pointer.
    let summary = report.summary();
    assert_eq!((summary.read, summary.kept, summary.skipped), (4, 3, 1));
    let skipped = &report.diagnostics[0];
    assert_eq!(skipped.issue, Issue::NotAFunction);
    assert_eq!(skipped.location.pointer, "/tools/3");
}

#[test]
fn openai_json_lines_rename_true_conflicts() {
    let report = import(&["openai_tools.jsonl"]);
    let names: Vec<&str> = report.tools.iter().map(|tool| tool.name.as_str()).collect();
    assert_eq!(names, ["send_email", "list_files", "send_email_2"]);
    let renamed = tool(&report, "send_email_2");
    assert_eq!(renamed.meta["original_name"], "send_email");
    assert_eq!(renamed.meta["name_collision"], true);
    let diagnostic = report
        .diagnostics
        .iter()
        .find(|d| d.issue == Issue::Renamed)
        .unwrap();
    assert_eq!(diagnostic.location.line, Some(4));
    assert_eq!(report.summary().renamed, 1);
}

#[test]
fn toolflow_lines_keep_their_source_and_origin() {
    let report = import(&["toolflow_tools.jsonl"]);
    assert_eq!(report.files[0].format, Some(Format::Toolflow));
    let hotel = tool(&report, "find_hotel");
    assert_eq!(hotel.source, "sealtools");
    assert_eq!(hotel.meta["field"], "Travel");
    assert!(hotel.returns.is_some());
    assert_eq!(
        tool(&report, "book_hotel").meta["origin"],
        "upstream/G1.json"
    );
    let rate = tool(&report, "rate_hotel");
    assert_eq!(rate.meta["original_name"], "rate.hotel");
    assert_eq!(rate.parameters["properties"]["stars"]["type"], "integer");
    assert_eq!(
        rate.meta["schema_fixes"],
        json!(["parameters.stars.type:Integer->integer"])
    );
    assert_eq!(report.summary().repaired, 1);
}

#[test]
fn mcp_results_bare_and_in_json_rpc() {
    let report = import(&["mcp_tools_list.json", "mcp_tools.json"]);
    assert!(
        report
            .files
            .iter()
            .all(|file| file.format == Some(Format::Mcp))
    );
    let read = tool(&report, "read_file");
    assert_eq!(read.source, "mcp");
    assert_eq!(read.meta["title"], "Read file");
    assert_eq!(read.meta["annotations"]["readOnlyHint"], true);
    assert_eq!(read.return_slots().len(), 2);
    assert_eq!(
        tool(&report, "git_commit").meta["original_name"],
        "git.commit"
    );
    assert_eq!(
        tool(&report, "search_notes").required_parameters(),
        ["query"]
    );
    assert_eq!(report.diagnostics.len(), 0, "{:?}", report.diagnostics);
}

#[test]
fn bfcl_types_names_and_repeats() {
    let report = import(&["BFCL_v4_tiny.json"]);
    let names: Vec<&str> = report.tools.iter().map(|tool| tool.name.as_str()).collect();
    // `math.factorial` repeats identically in tiny_1 (dropped) and differently in tiny_2 (renamed).
    assert_eq!(
        names,
        ["math_factorial", "geo_distance", "math_factorial_2"]
    );
    let summary = report.summary();
    assert_eq!(
        (
            summary.read,
            summary.kept,
            summary.deduplicated,
            summary.renamed
        ),
        (4, 3, 1, 1)
    );
    let factorial = tool(&report, "math_factorial");
    assert_eq!(factorial.source, "bfcl:tiny");
    assert_eq!(factorial.meta["original_name"], "math.factorial");
    assert_eq!(factorial.meta["first_seen_in"], "tiny_0");
    assert_eq!(factorial.meta["language"], "python");
    let distance = &tool(&report, "geo_distance").parameters;
    assert_eq!(distance["type"], "object");
    assert_eq!(
        distance["properties"]["a"],
        json!({"type": "array", "x-bfcl-type": "tuple", "items": {"type": "number"}, "description": "First point."})
    );
    assert_eq!(
        distance["properties"]["extra"],
        json!({"x-bfcl-type": "any"})
    );
    assert_eq!(
        distance["properties"]["options"]["properties"]["precise"],
        json!({"type": "boolean"})
    );
    assert_eq!(
        tool(&report, "math_factorial_2").parameters["properties"]["x"]["type"],
        "number"
    );
}

#[test]
fn toolbench_queries_dedupe_and_convert_templates() {
    let report = import(&["toolbench_queries.json"]);
    let names: Vec<&str> = report.tools.iter().map(|tool| tool.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "concert_details_for_gig_finder",
            "artist_for_gig_finder",
            "concert_details_for_gig_finder_2"
        ]
    );
    let summary = report.summary();
    assert_eq!(
        (
            summary.read,
            summary.kept,
            summary.deduplicated,
            summary.renamed,
            summary.skipped
        ),
        (4, 3, 1, 1, 0)
    );

    let concert = tool(&report, "concert_details_for_gig_finder");
    assert_eq!(concert.source, "toolbench");
    assert_eq!(concert.description, "Details of one concert.");
    assert_eq!(
        concert.parameters,
        json!({"type": "object", "properties": {
            "concertid": {"type": "string", "description": "Concert id", "examples": ["abc-123"], "x-rapidapi-type": "STRING"},
            "is_from": {"type": "string", "description": "", "format": "date", "x-rapidapi-type": "DATE (YYYY-MM-DD)"},
            "limit": {"type": "number", "description": "Max rows", "examples": [10], "x-rapidapi-type": "NUMBER"}
        }, "required": ["concertid"]})
    );
    assert_eq!(
        concert.returns,
        Some(json!({"type": "object", "properties": {
            "name": {"type": "string"}, "capacity": {"type": "integer"}, "price": {"type": "number"}, "sold_out": {"type": "boolean"},
            "lineup": {"type": "array", "items": {"type": "object", "properties": {"artist": {"type": "string"}}}},
            "tags": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
            "venue": {"type": "null"}
        }}))
    );
    assert_eq!(concert.meta["category"], "Music");
    assert_eq!(concert.meta["tool_name"], "Gig Finder");
    assert_eq!(concert.meta["api_name"], "Concert details");
    assert_eq!(concert.meta["method"], "GET");
    assert_eq!(concert.meta["returns_from"], "template_response");

    let artist = tool(&report, "artist_for_gig_finder");
    assert_eq!(artist.meta["returns_from"], "truncated_string_repaired");
    assert_eq!(
        artist.returns.as_ref().unwrap()["properties"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["id", "bio", "albums"]
    );
    let second = tool(&report, "concert_details_for_gig_finder_2");
    assert_eq!(second.meta["returns_from"], "absent");
    assert_eq!(second.returns, None);
    assert_eq!(second.required_parameters(), ["is_id"]);
}

#[test]
fn openapi_3_yaml_operations() {
    let report = import(&["openapi3.yaml"]);
    assert_eq!(report.files[0].format, Some(Format::Openapi));
    let names: Vec<&str> = report.tools.iter().map(|tool| tool.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "get-album",
            "post_albums",
            "delete_albums_id_tracks",
            "getFolder"
        ]
    );

    let album = tool(&report, "get-album");
    assert_eq!(album.description, "Catalog information for one album.");
    assert_eq!(album.meta["method"], "GET");
    assert_eq!(album.meta["path"], "/albums/{id}");
    assert_eq!(album.meta["summary"], "Get an album");
    assert_eq!(
        album.meta["parameter_locations"],
        json!({"id": "path", "market": "query", "X-Trace": "header"})
    );
    assert_eq!(album.required_parameters(), ["id"]);
    assert_eq!(
        album.parameters["properties"]["id"]["description"],
        "The album id."
    );
    assert_eq!(
        album.parameters["properties"]["market"]["description"],
        "An ISO 3166-1 country code."
    );
    assert!(
        album.parameters["properties"].get("session").is_none(),
        "cookies are left out"
    );
    // 200 → components/responses → allOf of components/schemas, all inlined.
    let returns = album.returns.as_ref().unwrap();
    assert_eq!(returns["allOf"][0]["properties"]["title"]["type"], "string");
    assert_eq!(
        returns["allOf"][1]["properties"]["tracks"]["items"]["properties"]["duration_ms"]["type"],
        "integer"
    );
    assert!(!returns.to_string().contains("$ref"));

    let create = tool(&report, "post_albums");
    assert_eq!(create.description, "Create an album");
    assert_eq!(create.required_parameters(), ["title"]);
    assert_eq!(
        create.parameters["properties"]["year"],
        json!({"type": "integer", "exclusiveMinimum": 1900})
    );
    assert!(
        create.meta["schema_fixes"]
            .to_string()
            .contains("exclusiveMinimum:bool->number")
    );
    assert!(create.returns.is_some(), "201 is the success response");

    let delete = tool(&report, "delete_albums_id_tracks");
    assert_eq!(
        delete.parameters["properties"]["body"],
        json!({"type": "array", "items": {"type": "string"}})
    );
    assert_eq!(delete.returns, None, "204 has no content");

    // A recursive schema is cut where it would recurse, and the cut recorded.
    let folder = tool(&report, "getFolder");
    let children = &folder.returns.as_ref().unwrap()["properties"]["children"]["items"];
    assert_eq!(
        children,
        &json!({"x-circular-ref": "#/components/schemas/Folder"})
    );
    assert!(
        folder.meta["schema_fixes"]
            .to_string()
            .contains("$ref-cycle"),
        "{}",
        folder.meta["schema_fixes"]
    );
}

#[test]
fn swagger_2_operations() {
    let report = import(&["swagger2.json"]);
    let names: Vec<&str> = report.tools.iter().map(|tool| tool.name.as_str()).collect();
    assert_eq!(names, ["listPets", "post_pets", "uploadPhoto"]);
    let list = tool(&report, "listPets");
    assert_eq!(
        list.parameters["properties"]["limit"],
        json!({"type": "integer", "format": "int32", "maximum": 100})
    );
    assert_eq!(
        list.parameters["properties"]["tags"],
        json!({"type": "array", "items": {"type": "string"}})
    );
    assert_eq!(
        list.returns.as_ref().unwrap()["items"]["required"],
        json!(["name"])
    );
    let add = tool(&report, "post_pets");
    assert_eq!(add.required_parameters(), ["name"]);
    assert_eq!(add.meta["parameter_locations"]["tag"], "body");
    let upload = tool(&report, "uploadPhoto");
    assert_eq!(
        upload.parameters["properties"]["photo"],
        json!({"type": "string", "format": "binary", "description": "The image."})
    );
    assert_eq!(upload.required_parameters(), ["petId"]);
    assert_eq!(upload.returns, None, "only a default response");
}

#[test]
fn names_stay_unique_across_files_and_forced_formats_apply() {
    let report = import(&["openai_tools.jsonl", "openai_tools.jsonl"]);
    // The second copy is identical, definition by definition: nothing new.
    assert_eq!(report.tools.len(), 3);
    assert_eq!(report.summary().deduplicated, 3);

    let forced = ImportOptions {
        format: Some(Format::Bfcl),
        strict: false,
    };
    let report = import_paths(&[fixture("openai_tools.jsonl")], &forced).unwrap();
    assert!(report.tools.iter().all(|tool| tool.source == "bfcl"));
}

#[test]
fn directories_are_walked_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.json"), r#"[{"name": "b"}]"#).unwrap();
    std::fs::write(dir.path().join("a.jsonl"), "{\"name\": \"a\"}\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a tool").unwrap();
    let report = import_paths(&[dir.path()], &ImportOptions::default()).unwrap();
    let names: Vec<&str> = report.tools.iter().map(|tool| tool.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
}

#[test]
fn apibank_apis_with_python_types() {
    let paths = [fixture("apibank_apis.json")];
    let report = import_paths(&paths, &ImportOptions::default()).unwrap();
    assert_all_valid(&report.tools);
    assert_eq!(report.files[0].format, Some(Format::Apibank));
    let names: Vec<&str> = report.tools.iter().map(|tool| tool.name.as_str()).collect();
    assert_eq!(names, ["AddAgenda", "QueryStock", "ToolSearcher"]);
    let agenda = tool(&report, "AddAgenda");
    assert_eq!(agenda.source, "apibank");
    assert_eq!(
        agenda.required_parameters(),
        ["token", "content", "time", "location"]
    );
    assert_eq!(
        agenda.returns,
        Some(json!({"type": "object", "properties": {
            "status": {"type": "string", "description": "success or failed"}
        }}))
    );
    let stock = tool(&report, "QueryStock");
    assert_eq!(stock.required_parameters(), ["stock_code"]);
    assert_eq!(
        stock.returns.as_ref().unwrap()["properties"]["stock_price"]["type"],
        "number"
    );
    let searcher = tool(&report, "ToolSearcher");
    assert_eq!(
        searcher.parameters["properties"]["keywords"],
        json!({"type": "array", "items": {"type": "string"}, "description": "The keywords to search for."})
    );
    assert_eq!(searcher.returns, None);
    // The broken entry is skipped with a pointer to its parameter dict.
    assert_eq!(report.diagnostics.len(), 1);
    assert_eq!(
        report.diagnostics[0].location.pointer,
        "/3/input_parameters"
    );
    assert_eq!(report.diagnostics[0].issue, Issue::WrongType);
}
