//! Sampling: determinism, connectivity of restart-free walks, and the hard cases (isolated
//! nodes, sizes above the node count, zero subsets) that must end, not hang.

use toolflow_core::SamplingStrategy::{Chain, Graph, Random};
use toolflow_core::ToolGraph;
use toolflow_graph::sample::{subset_rng, uniform_below};
use toolflow_graph::{ForwardStep, Sampler, forward_steps, sample_subsets, subset_seed};

/// Adjacency lists from an undirected edge list.
fn adjacency(nodes: usize, edges: &[(u32, u32)]) -> Vec<Vec<u32>> {
    let mut adjacency = vec![Vec::new(); nodes];
    for &(a, b) in edges {
        adjacency[a as usize].push(b);
        adjacency[b as usize].push(a);
    }
    for neighbours in &mut adjacency {
        neighbours.sort_unstable();
        neighbours.dedup();
    }
    adjacency
}

/// A pseudo-random sparse graph with many components of various sizes and isolated nodes.
fn messy_graph(nodes: u32) -> Vec<Vec<u32>> {
    let mut rng = subset_rng(7);
    let edges: Vec<(u32, u32)> = (0..nodes)
        .filter_map(|a| {
            // A third of the nodes get one edge to a node not far away; many stay apart.
            (uniform_below(&mut rng, 3) == 0)
                .then(|| (a, (a + 1 + uniform_below(&mut rng, 6) as u32) % nodes))
        })
        .collect();
    adjacency(nodes as usize, &edges)
}

fn is_connected(adjacency: &[Vec<u32>], nodes: &[u32]) -> bool {
    let mut reached = vec![nodes[0]];
    let mut stack = vec![nodes[0]];
    while let Some(node) = stack.pop() {
        for &next in &adjacency[node as usize] {
            if nodes.contains(&next) && !reached.contains(&next) {
                reached.push(next);
                stack.push(next);
            }
        }
    }
    reached.len() == nodes.len()
}

#[test]
fn golden_subsets_for_a_fixed_seed() {
    // 0—1—2—3 path, 4—5, 6 alone.
    let graph = adjacency(7, &[(0, 1), (1, 2), (2, 3), (4, 5)]);
    let subsets = sample_subsets(&graph, &[], Graph, 3, 6, 42, 1);
    let got: Vec<(&[u32], u32, bool, u64)> = subsets
        .iter()
        .map(|s| (s.nodes.as_slice(), s.restarts, s.short, s.seed))
        .collect();
    assert_eq!(got, GOLDEN_GRAPH);
    let random: Vec<Vec<u32>> = sample_subsets(&graph, &[], Random, 3, 4, 42, 1)
        .into_iter()
        .map(|s| s.nodes)
        .collect();
    assert_eq!(random, GOLDEN_RANDOM);
}

/// Pinned: a change here changes every `subsets.jsonl` ever written with a seed.
const GOLDEN_GRAPH: [(&[u32], u32, bool, u64); 6] = [
    (&[3, 2, 1], 0, false, 9793598592048764251),
    (&[3, 2, 1], 0, false, 3848037631063020131),
    (&[6, 4, 5], 1, false, 11068619710345277862),
    (&[6, 2, 3], 1, false, 9848126059493613985),
    (&[5, 4, 3], 1, false, 10443388943775451285),
    (&[6, 4, 5], 1, false, 6920021496170175159),
];
const GOLDEN_RANDOM: [[u32; 3]; 4] = [[3, 1, 5], [3, 6, 5], [6, 5, 0], [6, 3, 4]];

#[test]
fn same_seed_same_subsets_whatever_the_threads() {
    let graph = messy_graph(500);
    for strategy in [Graph, Random] {
        let one = sample_subsets(&graph, &[], strategy, 5, 10_000, 9, 1);
        assert_eq!(one, sample_subsets(&graph, &[], strategy, 5, 10_000, 9, 3));
        assert_ne!(one, sample_subsets(&graph, &[], strategy, 5, 10_000, 10, 1));
        // Subset k depends on (seed, k) only.
        let mut sampler = Sampler::new(&graph);
        assert_eq!(one[1234], sampler.sample(strategy, 5, 9, 1234));
        assert_eq!(one[1234].seed, subset_seed(9, 1234));
    }
}

#[test]
fn restart_free_walks_are_connected_and_distinct() {
    let graph = messy_graph(2000);
    let subsets = sample_subsets(&graph, &[], Graph, 4, 20_000, 1, 1);
    let mut restart_free = 0;
    for subset in &subsets {
        let mut distinct = subset.nodes.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), subset.nodes.len(), "{subset:?}");
        assert_eq!(subset.nodes.len(), 4);
        assert!(!subset.short);
        if subset.restarts == 0 {
            restart_free += 1;
            assert!(is_connected(&graph, &subset.nodes), "{subset:?}");
        } else {
            // A restart happens only when the nodes chosen so far fill whole components.
            assert!(!is_connected(&graph, &subset.nodes), "{subset:?}");
        }
    }
    assert!(
        restart_free > 1000 && restart_free < subsets.len(),
        "the fixture mixes both cases: {restart_free}"
    );
}

#[test]
fn isolated_nodes_never_hang() {
    let graph = adjacency(50, &[]);
    for subset in sample_subsets(&graph, &[], Graph, 8, 1000, 3, 1) {
        assert_eq!(subset.nodes.len(), 8);
        assert_eq!(
            subset.restarts, 7,
            "every step after the first is a restart"
        );
        assert!(!subset.short);
    }
    // Asking for more than there is: every node, once, and short.
    let subsets = sample_subsets(&graph, &[], Graph, 80, 10, 3, 1);
    for subset in subsets {
        let mut nodes = subset.nodes.clone();
        nodes.sort_unstable();
        assert_eq!(nodes, (0..50).collect::<Vec<u32>>());
        assert!(subset.short);
        assert_eq!(subset.restarts, 49);
    }
}

#[test]
fn size_above_node_count_and_degenerate_requests() {
    let graph = adjacency(3, &[(0, 1), (1, 2)]);
    for strategy in [Graph, Random] {
        let subset = &sample_subsets(&graph, &[], strategy, 10, 1, 0, 1)[0];
        assert!(subset.short);
        assert_eq!(subset.nodes.len(), 3);
        assert_eq!(subset.restarts, 0, "a connected graph needs no restart");
        assert!(
            sample_subsets(&graph, &[], strategy, 4, 0, 0, 1).is_empty(),
            "count 0"
        );
        let empty = &sample_subsets(&graph, &[], strategy, 0, 1, 0, 1)[0];
        assert!(empty.nodes.is_empty() && !empty.short);
        let none = &sample_subsets(&[], &[], strategy, 2, 1, 0, 1)[0];
        assert!(none.nodes.is_empty() && none.short);
    }
}

#[test]
fn dead_ends_continue_from_an_earlier_node() {
    // A star: from a leaf the walk must go back through the centre to reach the others.
    let graph = adjacency(6, &[(0, 1), (0, 2), (0, 3), (0, 4), (0, 5)]);
    for subset in sample_subsets(&graph, &[], Graph, 6, 500, 11, 1) {
        assert_eq!(subset.restarts, 0, "{subset:?}");
        assert_eq!(subset.nodes.len(), 6);
    }
}

#[test]
fn uniform_sampling_is_uniform_enough() {
    let graph = adjacency(10, &[]);
    let mut counts = [0u32; 10];
    for subset in sample_subsets(&graph, &[], Random, 3, 20_000, 5, 1) {
        for node in subset.nodes {
            counts[node as usize] += 1;
        }
    }
    // 6000 expected per node; 5 standard deviations is about ±370.
    assert!(
        counts.iter().all(|&c| (5630..=6370).contains(&c)),
        "{counts:?}"
    );
    let mut rng = subset_rng(1);
    let mut buckets = [0u32; 3];
    for _ in 0..30_000 {
        buckets[uniform_below(&mut rng, 3) as usize] += 1;
    }
    assert!(
        buckets.iter().all(|&c| (9_600..=10_400).contains(&c)),
        "{buckets:?}"
    );
}

fn step(consumer: u32) -> ForwardStep {
    ForwardStep {
        consumer,
        field: format!("out{consumer}"),
        parameter: format!("in{consumer}"),
    }
}

#[test]
fn chains_follow_return_param_edges_forward_and_record_each_link() {
    // 0 → 1 → 2 → 3 and 1 → 4 as data flow; 5 joined to 3 by a param-param edge only.
    let forward = vec![
        vec![step(1)],
        vec![step(2), step(4)],
        vec![step(3)],
        vec![],
        vec![],
        vec![],
    ];
    let graph = adjacency(6, &[(0, 1), (1, 2), (2, 3), (1, 4), (3, 5)]);
    let names: Vec<String> = (0..6).map(|n| format!("t{n}")).collect();
    let mut whole_chains = 0;
    for sampled in sample_subsets(&graph, &forward, Chain, 3, 500, 4, 1) {
        let subset = sampled.into_subset(&names, &forward);
        let node = |tool: &str| tool[1..].parse::<usize>().unwrap();
        assert!(
            !forward[node(&subset.tools[0])].is_empty(),
            "starts at a producer: {subset:?}"
        );
        // Each step is a link, a fallback or a restart; a link's producer was chosen first.
        let steps = subset.links.len() + (subset.fallbacks + subset.restarts) as usize;
        assert_eq!(steps, subset.tools.len() - 1, "{subset:?}");
        for link in &subset.links {
            let at = |tool: &str| subset.tools.iter().position(|t| t == tool).unwrap();
            assert!(at(&link.producer) < at(&link.consumer), "{subset:?}");
            let consumer = node(&link.consumer);
            assert_eq!(
                (link.field.clone(), link.parameter.clone()),
                (format!("out{consumer}"), format!("in{consumer}"))
            );
        }
        // Only a start at 2 (2 → 3, then nothing flows on) needs a graph step.
        if subset.fallbacks == 0 {
            whole_chains += 1;
        } else {
            assert_eq!(subset.tools[..2], ["t2", "t3"]);
        }
    }
    assert!(
        whole_chains > 250,
        "{whole_chains} of 500 were whole chains"
    );
}

#[test]
fn a_chain_that_cannot_grow_takes_counted_graph_steps() {
    // Only 0 → 1 is data flow; 2 hangs on 1 by a param-param edge, 3 is alone.
    let forward = vec![vec![step(1)], vec![], vec![], vec![]];
    let graph = adjacency(4, &[(0, 1), (1, 2)]);
    let names: Vec<String> = (0..4).map(|n| format!("t{n}")).collect();
    let subset = sample_subsets(&graph, &forward, Chain, 4, 1, 0, 1)
        .remove(0)
        .into_subset(&names, &forward);
    assert_eq!(subset.tools, ["t0", "t1", "t2", "t3"]);
    assert_eq!(
        (subset.links.len(), subset.fallbacks, subset.restarts),
        (1, 1, 1)
    );
    // Without any data flow every step is a fallback, and the subsets are the graph walk's.
    let no_flow = sample_subsets(&graph, &[], Chain, 3, 50, 2, 1);
    let walk = sample_subsets(&graph, &[], Graph, 3, 50, 2, 1);
    for (chain, graph_walk) in no_flow.iter().zip(&walk) {
        assert_eq!(chain.nodes, graph_walk.nodes);
        assert_eq!(chain.fallbacks + chain.restarts, 2);
    }
}

#[test]
fn forward_steps_read_the_best_link_of_each_return_param_edge() {
    let graph: ToolGraph = serde_json::from_value(serde_json::json!({
        "nodes": ["search", "details", "other"],
        "edges": [
            {"a": "details", "b": "other", "kind": "param-param", "score": 0.9,
             "evidence": {"a": "q: x", "b": "q: y"}},
            {"a": "search", "b": "details", "kind": "return-param", "score": 0.9,
             "evidence": {"a": "person id", "b": "person id", "links": [
                {"from": "results[].id", "to": "person_id", "score": 0.9, "rule": "same-name",
                 "signals": {"types": 1.0, "names": 1.0, "qualified_cosine": 1.0, "paper_cosine": 0.5, "specificity": 1.0}}]}},
            {"a": "other", "b": "search", "kind": "return-param", "score": 0.85,
             "evidence": {"a": "title: the title", "b": "query: words"}}
        ],
        "meta": {"tau": 0.82, "model": "m", "tools_hash": "h", "strings": 0}
    }))
    .unwrap();
    let forward = forward_steps(&graph).unwrap();
    assert_eq!(
        forward[0],
        [ForwardStep {
            consumer: 1,
            field: "results[].id".into(),
            parameter: "person_id".into()
        }]
    );
    assert!(forward[1].is_empty());
    // A paper edge's evidence gives the names before ": ".
    assert_eq!(
        forward[2],
        [ForwardStep {
            consumer: 0,
            field: "title".into(),
            parameter: "query".into()
        }]
    );
}
