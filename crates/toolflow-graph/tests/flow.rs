//! The flow method on hand-made tools, with an embedder that gives every distinct string its
//! own near-orthogonal vector (so only the name, type and specificity rules can join tools),
//! and one that makes chosen strings similar.

use serde_json::{Value, json};
use toolflow_core::{EdgeKind, GraphMethod, LinkRule, Tool, ToolGraph};
use toolflow_graph::{BuildOptions, FlowOptions, build_flow_graph, build_graph};

fn tool(name: &str, parameters: Value, returns: Option<Value>, meta: Value) -> Tool {
    serde_json::from_value(json!({
        "name": name,
        "parameters": {"type": "object", "properties": parameters},
        "returns": returns,
        "meta": meta,
    }))
    .unwrap()
}

/// A pseudo-random unit vector per string, from its bytes: distinct strings are near-orthogonal
/// in 256 dimensions (cosines around ±0.06), equal strings identical.
fn hashed(text: &str) -> Vec<f32> {
    let mut state: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        state = (state ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut vector: Vec<f32> = (0..256)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    vector.iter_mut().for_each(|x| *x /= norm);
    vector
}

fn hashed_embed(strings: &[String]) -> Result<Vec<Vec<f32>>, std::io::Error> {
    Ok(strings.iter().map(|s| hashed(s)).collect())
}

fn options() -> BuildOptions {
    BuildOptions {
        tau: 0.82,
        model: "fake".into(),
        tools_hash: "hash".into(),
        threads: 1,
    }
}

/// Filler tools that all take `page` and `language`, so those slots are generic.
fn fillers(count: usize) -> Vec<Tool> {
    (0..count)
        .map(|i| {
            tool(
                &format!("filler_{i}"),
                json!({"page": {"type": "integer"}, "language": {"type": "string"}, format!("own_{i}"): {"type": "string"}}),
                None,
                json!({}),
            )
        })
        .collect()
}

fn tools() -> Vec<Tool> {
    let mut tools = vec![
        // 0: an OpenAPI search whose array items carry a bare `id`.
        tool(
            "searchPerson",
            json!({"query": {"type": "string"}, "page": {"type": "integer"}, "language": {"type": "string"}}),
            Some(
                json!({"type": "object", "properties": {"results": {"type": "array", "items": {"type": "object",
                "properties": {"id": {"type": "integer"}, "known_for": {"type": "string"}}}}, "page": {"type": "integer"}}}),
            ),
            json!({"method": "GET", "path": "/search/person"}),
        ),
        // 1: takes the person id.
        tool(
            "personDetails",
            json!({"person_id": {"type": "integer", "description": "TMDB id"}, "page": {"type": "integer"}, "language": {"type": "string"}}),
            None,
            json!({"method": "GET", "path": "/person/{person_id}"}),
        ),
        // 2: an airport search returning `skyId` (string) and a boolean.
        tool(
            "SkyScrapperSearchAirport",
            json!({"query": {"type": "string"}}),
            Some(
                json!({"type": "array", "items": {"type": "object", "properties": {
                "skyId": {"type": "string"}, "isOpen": {"type": "boolean"}}}}),
            ),
            json!({}),
        ),
        // 3: takes two sky ids and a number called `isOpen` (a boolean cannot feed it).
        tool(
            "SkyScrapperFlightSearch",
            json!({"originSkyId": {"type": "string"}, "destinationSkyId": {"type": "string"}, "isOpen": {"type": "number"}}),
            None,
            json!({}),
        ),
        // 4 and 5: share a specific slot, and nothing flows between them.
        tool(
            "trackParcel",
            json!({"tracking_number": {"type": "string"}, "page": {"type": "integer"}}),
            None,
            json!({}),
        ),
        tool(
            "parcelEvents",
            json!({"trackingNumber": {"type": "string"}, "language": {"type": "string"}}),
            None,
            json!({}),
        ),
    ];
    tools.extend(fillers(12));
    tools
}

fn edge<'a>(
    graph: &'a ToolGraph,
    a: &str,
    b: &str,
    kind: EdgeKind,
) -> Option<&'a toolflow_core::Edge> {
    graph
        .edges
        .iter()
        .find(|e| e.a == a && e.b == b && e.kind == kind)
}

#[test]
fn qualified_names_find_the_flow_and_keep_their_evidence() {
    let (graph, report) =
        build_flow_graph(&tools(), &options(), &FlowOptions::default(), hashed_embed).unwrap();
    assert_eq!(graph.meta.method, GraphMethod::Flow);
    assert!(
        report.return_slots >= 6,
        "nested fields are slots: {report:?}"
    );

    // `results[].id` of `/search/person` reads `person id`.
    let person = edge(
        &graph,
        "searchPerson",
        "personDetails",
        EdgeKind::ReturnParam,
    )
    .expect("person id flows");
    let link = &person.evidence.links[0];
    assert_eq!(
        (link.from.as_str(), link.to.as_str(), link.rule),
        ("results[].id", "person_id", LinkRule::SameName)
    );
    assert_eq!(link.signals.types, 1.0);
    assert_eq!(person.evidence.a, "person id");

    // `skyId` feeds both sky-id parameters; the boolean does not feed the number.
    let sky = edge(
        &graph,
        "SkyScrapperSearchAirport",
        "SkyScrapperFlightSearch",
        EdgeKind::ReturnParam,
    )
    .expect("sky ids flow");
    let pairs: Vec<(&str, &str)> = sky
        .evidence
        .links
        .iter()
        .map(|l| (l.from.as_str(), l.to.as_str()))
        .collect();
    assert!(
        pairs.contains(&("[].skyId", "originSkyId")) || pairs.contains(&("skyId", "originSkyId")),
        "{pairs:?}"
    );
    assert_eq!(
        sky.evidence.links.len(),
        2,
        "two sky ids, no boolean → number: {pairs:?}"
    );
    assert!(
        sky.evidence
            .links
            .iter()
            .all(|l| l.rule == LinkRule::NameSuffix)
    );

    // A specific shared slot joins; the generic `page` and `language` join nothing.
    let parcel = edge(&graph, "trackParcel", "parcelEvents", EdgeKind::ParamParam)
        .expect("tracking numbers");
    assert_eq!(parcel.evidence.links[0].rule, LinkRule::SharedSlot);
    assert!(parcel.evidence.links[0].signals.specificity > 0.5);
    for edge in &graph.edges {
        for link in &edge.evidence.links {
            assert!(
                !["page", "language"].contains(&link.to.as_str()),
                "a generic slot joined: {edge:?}"
            );
        }
    }
    // `page` returned by the search and taken by every tool is no data flow either.
    assert!(edge(&graph, "searchPerson", "filler_0", EdgeKind::ReturnParam).is_none());
}

#[test]
fn signals_can_be_switched_off_and_the_output_is_deterministic() {
    let (first, _) =
        build_flow_graph(&tools(), &options(), &FlowOptions::default(), hashed_embed).unwrap();
    let (second, _) =
        build_flow_graph(&tools(), &options(), &FlowOptions::default(), hashed_embed).unwrap();
    assert_eq!(
        serde_json::to_string(&first).unwrap(),
        serde_json::to_string(&second).unwrap()
    );

    // Without context, `id` is only `id`: the person link is lost.
    let mut flow = FlowOptions::default();
    flow.without.context = true;
    let (graph, _) = build_flow_graph(&tools(), &options(), &flow, hashed_embed).unwrap();
    assert!(
        edge(
            &graph,
            "searchPerson",
            "personDetails",
            EdgeKind::ReturnParam
        )
        .is_none()
    );

    // Without specificity, `page` joins the tools that share it.
    let mut flow = FlowOptions::default();
    flow.without.specificity = true;
    let (graph, _) = build_flow_graph(&tools(), &options(), &flow, hashed_embed).unwrap();
    assert!(edge(&graph, "filler_0", "filler_1", EdgeKind::ParamParam).is_some());
}

#[test]
fn embeddings_alone_join_differently_named_slots() {
    // `town` and `city` get one vector: the qualified and paper cosines are both 1.
    let tools = vec![
        tool(
            "hotels",
            json!({"q": {"type": "string"}}),
            Some(
                json!({"type": "object", "properties": {"town": {"type": "string", "description": "Town"}}}),
            ),
            json!({}),
        ),
        tool(
            "weather",
            json!({"city": {"type": "string", "description": "City"}}),
            None,
            json!({}),
        ),
    ];
    let embed = |strings: &[String]| -> Result<Vec<Vec<f32>>, std::io::Error> {
        Ok(strings
            .iter()
            .map(|s| {
                if ["town", "city", "town: Town", "city: City"].contains(&s.as_str()) {
                    hashed("place")
                } else {
                    hashed(s)
                }
            })
            .collect())
    };
    let (graph, _) = build_flow_graph(&tools, &options(), &FlowOptions::default(), embed).unwrap();
    let link = &edge(&graph, "hotels", "weather", EdgeKind::ReturnParam)
        .expect("town → city")
        .evidence
        .links[0];
    assert_eq!(link.rule, LinkRule::Embedding);
    assert!(link.signals.qualified_cosine > 0.99 && link.signals.paper_cosine > 0.99);
}

#[test]
fn the_paper_method_records_no_links_and_no_method() {
    let (graph, _) = build_graph(&tools(), &options(), hashed_embed).unwrap();
    let json = serde_json::to_value(&graph).unwrap();
    assert!(
        json["meta"].get("method").is_none(),
        "paper graphs keep their old bytes"
    );
    assert!(graph.edges.iter().all(|e| e.evidence.links.is_empty()));
    assert!(
        json["edges"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["evidence"].get("links").is_none())
    );
}

#[test]
fn a_description_that_names_its_source_links_the_tool_it_names() {
    let mut tools = vec![
        // The producer: its result is an object without declared fields.
        tool(
            "Tripadvisor_Search_Restaurant_Location",
            json!({"query": {"type": "string"}}),
            Some(
                json!({"type": "object", "properties": {"status": {"type": "boolean"}, "location": {"type": "object"}}}),
            ),
            json!({}),
        ),
        // A tool whose name shares most words with the producer's: not the one named.
        tool(
            "Tripadvisor_Search_Restaurants",
            json!({
                "locationId": {"type": "string", "description": "Location ID obtained from Tripadvisor's Search Restaurant Location API."},
                "page": {"type": "integer", "description": "Sorted by the page number, from the first."}
            }),
            Some(json!({"type": "object", "properties": {"status": {"type": "boolean"}}})),
            json!({}),
        ),
        // Names a source no tool matches: no link.
        tool(
            "Goodreads_Get_Authors_Books",
            json!({"authorID": {"type": "string", "description": "Can be obtained through other endpoints."}}),
            None,
            json!({}),
        ),
        // No return schema: its whole result is the field.
        tool(
            "Weather_Lookup_Station",
            json!({"city": {"type": "string"}}),
            None,
            json!({}),
        ),
        tool(
            "Forecast",
            json!({"station": {"type": "string", "description": "A station code returned by the Weather Lookup Station endpoint."}}),
            None,
            json!({}),
        ),
    ];
    // Two APIs with a tool of the same words: the consumer's own API's is the one named.
    let languages = json!({"type": "object", "properties": {"languages": {"type": "array", "items": {"type": "string"}}}});
    tools.extend([
        tool(
            "get_languages_for_translator",
            json!({}),
            Some(languages.clone()),
            json!({"tool_name": "translator"}),
        ),
        tool(
            "get_languages_for_airbnb_search",
            json!({"page": {"type": "integer"}}),
            Some(languages),
            json!({"tool_name": "airbnb search"}),
        ),
        tool(
            "property_details_for_airbnb_search",
            json!({"locale": {"type": "string", "description": "id item from the Get Languages API"}}),
            None,
            json!({"tool_name": "airbnb search"}),
        ),
    ]);
    tools.extend(fillers(20));
    let (graph, _) =
        build_flow_graph(&tools, &options(), &FlowOptions::default(), hashed_embed).unwrap();
    assert!(
        edge(
            &graph,
            "get_languages_for_airbnb_search",
            "property_details_for_airbnb_search",
            EdgeKind::ReturnParam
        )
        .is_some_and(|e| e.evidence.links[0].rule == LinkRule::DescribedSource)
    );
    assert!(
        edge(
            &graph,
            "get_languages_for_translator",
            "property_details_for_airbnb_search",
            EdgeKind::ReturnParam
        )
        .is_none(),
        "another API's namesake is not the source"
    );
    let named = edge(
        &graph,
        "Tripadvisor_Search_Restaurant_Location",
        "Tripadvisor_Search_Restaurants",
        EdgeKind::ReturnParam,
    )
    .expect("the named producer feeds the parameter");
    let link = &named.evidence.links[0];
    assert_eq!(
        (link.from.as_str(), link.to.as_str(), link.rule),
        ("location", "locationId", LinkRule::DescribedSource)
    );
    let whole = edge(
        &graph,
        "Weather_Lookup_Station",
        "Forecast",
        EdgeKind::ReturnParam,
    )
    .expect("a producer without a return schema gives its whole result");
    assert_eq!(whole.evidence.links[0].from, "");
    assert!(
        graph
            .edges
            .iter()
            .all(|e| e.b != "Goodreads_Get_Authors_Books" && e.a != "Goodreads_Get_Authors_Books"),
        "a source that names no tool links nothing"
    );

    let without = FlowOptions {
        without: toolflow_graph::SignalSet {
            described_source: true,
            ..Default::default()
        },
        ..FlowOptions::default()
    };
    let (graph, _) = build_flow_graph(&tools, &options(), &without, hashed_embed).unwrap();
    assert!(
        edge(
            &graph,
            "Weather_Lookup_Station",
            "Forecast",
            EdgeKind::ReturnParam
        )
        .is_none(),
        "switched off, the description alone links nothing"
    );
}

#[test]
fn a_path_parameter_is_qualified_by_the_segment_before_it() {
    let mut tools = vec![
        tool(
            "search",
            json!({"q": {"type": "string"}}),
            Some(json!({"type": "object", "properties": {
                "artists": {"type": "object", "properties": {"items": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string"}}}}}},
                "albums": {"type": "object", "properties": {"items": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string"}}}}}}
            }})),
            json!({"method": "GET", "path": "/search"}),
        ),
        // `id` identifies an artist, though the path ends in `albums`.
        tool(
            "getArtistAlbums",
            json!({"id": {"type": "string"}, "limit": {"type": "integer"}}),
            None,
            json!({"method": "GET", "path": "/artists/{id}/albums"}),
        ),
        tool(
            "getAlbumTracks",
            json!({"id": {"type": "string"}}),
            None,
            json!({"method": "GET", "path": "/albums/{id}/tracks"}),
        ),
    ];
    tools.extend(fillers(12));
    let (graph, _) =
        build_flow_graph(&tools, &options(), &FlowOptions::default(), hashed_embed).unwrap();
    let from = |consumer: &str| -> Vec<String> {
        edge(&graph, "search", consumer, EdgeKind::ReturnParam)
            .map(|e| e.evidence.links.iter().map(|l| l.from.clone()).collect())
            .unwrap_or_default()
    };
    assert_eq!(from("getArtistAlbums"), ["artists.items[].id"]);
    assert_eq!(from("getAlbumTracks"), ["albums.items[].id"]);
}

#[test]
fn a_tool_that_takes_one_of_a_parameters_alternatives_only_echoes_it() {
    let user = || json!({"type": "object", "properties": {"username": {"type": "string"}}});
    let echo = |name: &str| {
        tool(
            name,
            json!({"username_or_id_or_url": {"type": "string"}}),
            Some(user()),
            json!({}),
        )
    };
    // Listed first, the echoes would win ties: they take a username (or an id, or a URL) and
    // return it again.
    let mut tools = vec![
        echo("userInfo"),
        echo("userFollowers"),
        // Finds the user: where a username comes from.
        tool(
            "searchUser",
            json!({"search_query": {"type": "string"}}),
            Some(user()),
            json!({}),
        ),
        tool(
            "userPosts",
            json!({"username_or_id_or_url": {"type": "string"}}),
            None,
            json!({}),
        ),
    ];
    tools.extend(fillers(12));
    let (graph, _) =
        build_flow_graph(&tools, &options(), &FlowOptions::default(), hashed_embed).unwrap();
    let producers: Vec<(&str, f32)> = graph
        .edges
        .iter()
        .filter(|e| e.b == "userPosts" && e.kind == EdgeKind::ReturnParam)
        .map(|e| (e.a.as_str(), e.score))
        .collect();
    let source = producers
        .iter()
        .find(|(name, _)| *name == "searchUser")
        .unwrap_or_else(|| panic!("the search feeds the posts: {producers:?}"))
        .1;
    assert!(
        producers
            .iter()
            .all(|(name, score)| *name == "searchUser" || *score < source),
        "{producers:?}"
    );
}

#[test]
fn composed_responses_are_read_and_a_search_ranks_first_among_equal_producers() {
    let artists = || json!({"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string"}}}});
    let mut tools = vec![
        // Two tools that need an id themselves and return artists: listed first, they would
        // win a tie on slot order.
        tool(
            "getAlbum",
            json!({"id": {"type": "string"}}),
            Some(json!({"type": "object", "properties": {"artists": artists()}})),
            json!({"method": "GET", "path": "/albums/{id}"}),
        ),
        tool(
            "getTrack",
            json!({"id": {"type": "string"}}),
            Some(json!({"type": "object", "properties": {"artists": artists()}})),
            json!({"method": "GET", "path": "/tracks/{id}"}),
        ),
        // The search: its response is a paging object composed with its items, as OpenAPI
        // documents write it.
        tool(
            "search",
            json!({"q": {"type": "string"}}),
            Some(
                json!({"type": "object", "properties": {"artists": {"allOf": [
                    {"type": "object", "properties": {"total": {"type": "integer"}, "next": {"type": "string"}}},
                    {"type": "object", "properties": {"items": {"type": "array", "items": {"allOf": [
                        {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}}}
                    ]}}}}
                ]}}}),
            ),
            json!({"method": "GET", "path": "/search"}),
        ),
        tool(
            "getArtist",
            json!({"id": {"type": "string"}}),
            None,
            json!({"method": "GET", "path": "/artists/{id}"}),
        ),
    ];
    tools.extend(fillers(12));
    let (graph, _) =
        build_flow_graph(&tools, &options(), &FlowOptions::default(), hashed_embed).unwrap();
    let from_search = edge(&graph, "search", "getArtist", EdgeKind::ReturnParam)
        .expect("the search's composed items feed the artist endpoint");
    assert_eq!(from_search.evidence.links[0].from, "artists.items[].id");
    let producers = graph
        .edges
        .iter()
        .filter(|e| e.b == "getArtist" && e.kind == EdgeKind::ReturnParam)
        .count();
    assert_eq!(
        producers, 2,
        "two producers per parameter, the search among them"
    );
}
