//! Building the tool graph (paper §3.1.1) from tools and an embedding function.
//!
//! 1. Every top-level parameter and every return field (an array's items' fields) of every
//!    tool becomes the string `"{name}: {description}"` ([`toolflow_core::tool::Slot::text`]);
//!    each distinct string is embedded once.
//! 2. An exact blocked join ([`crate::join`]) finds the string pairs with cosine > τ:
//!    parameter × parameter (upper triangle only) and return × parameter.
//! 3. String pairs expand to tool pairs `i != j` through the tools that own each string. One
//!    `param-param` edge per unordered pair (`a` the earlier node), one `return-param` edge per
//!    direction (`a` the producer), each with its best-scoring string pair as evidence.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::{Duration, Instant};

use toolflow_core::{Edge, EdgeKind, Evidence, GraphMeta, Tool, ToolGraph};

use crate::join::{Rows, join};

/// Why a graph could not be built; `E` is the embedding function's error.
#[derive(Debug, thiserror::Error)]
pub enum GraphError<E: std::error::Error + 'static> {
    /// τ outside [-1, 1), given here.
    #[error("the similarity threshold τ must lie in [-1, 1), got {0}")]
    InvalidTau(f32),
    /// Two tools share a name, which nodes are known by.
    #[error(
        "tool #{second} is named `{name}`, like tool #{first}; names must be unique (`toolflow import` renames duplicates)"
    )]
    DuplicateName {
        /// The shared name.
        name: String,
        /// The first tool with it, counted from 1.
        first: usize,
        /// The next tool with it, counted from 1.
        second: usize,
    },
    /// The embedding function failed.
    #[error("embedding failed")]
    Embed(#[source] E),
    /// The embedding function returned a different number of vectors than strings.
    #[error("the embedder returned {got} vectors for {expected} strings")]
    EmbeddingCount {
        /// Strings sent.
        expected: usize,
        /// Vectors returned.
        got: usize,
    },
    /// A vector whose length differs from the first one's.
    #[error("embedding #{index} has {got} dimensions where the first had {expected}")]
    EmbeddingDimension {
        /// Its position, from 0.
        index: usize,
        /// The first vector's length.
        expected: usize,
        /// Its length.
        got: usize,
    },
}

/// What the build needs besides the tools.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Strict threshold on the cosine.
    pub tau: f32,
    /// Id of the embedding model, recorded in the graph's meta.
    pub model: String,
    /// Content hash of the tools file, recorded in the graph's meta.
    pub tools_hash: String,
    /// Threads for the join; 0 means as many as the machine has.
    pub threads: usize,
}

/// Sizes and timings of one build.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BuildReport {
    /// Parameters over all tools.
    pub parameter_slots: usize,
    /// Return fields over all tools.
    pub return_slots: usize,
    /// Distinct strings embedded.
    pub strings: usize,
    /// Distinct strings that are some tool's parameter.
    pub parameter_strings: usize,
    /// Distinct strings that are some tool's return field.
    pub return_strings: usize,
    /// String pairs above τ found by the join (before expansion to tools).
    pub string_pairs: usize,
    /// Time spent in the embedding function; written in seconds.
    #[serde(serialize_with = "seconds")]
    pub embed_time: Duration,
    /// Time from the join to the finished edge list; written in seconds.
    #[serde(serialize_with = "seconds")]
    pub join_time: Duration,
}

fn seconds<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

/// The distinct slot strings of a tool set and which tools own each, as parameter or return.
#[derive(Debug, Default)]
pub struct SlotStrings {
    /// Distinct strings in order of first appearance (tools in order; parameters, then returns).
    pub strings: Vec<String>,
    /// For each string, the tools having it as a parameter, ascending.
    pub parameter_owners: Vec<Vec<u32>>,
    /// For each string, the tools having it as a return field, ascending.
    pub return_owners: Vec<Vec<u32>>,
    /// Parameters over all tools, repeats included.
    pub parameter_slots: usize,
    /// Return fields over all tools, repeats included.
    pub return_slots: usize,
}

impl SlotStrings {
    /// Gathers the slot strings of `tools`, a tool's index being its node id.
    pub fn collect(tools: &[Tool]) -> Self {
        let mut slots = SlotStrings::default();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (tool, definition) in tools.iter().enumerate() {
            let tool = tool as u32;
            let sides = [
                (definition.parameter_slots(), true),
                (definition.return_slots(), false),
            ];
            for (side, is_parameter) in sides {
                for slot in side {
                    let text = slot.text();
                    let id = match index.entry(text) {
                        Entry::Occupied(entry) => *entry.get(),
                        Entry::Vacant(entry) => {
                            slots.strings.push(entry.key().clone());
                            slots.parameter_owners.push(Vec::new());
                            slots.return_owners.push(Vec::new());
                            *entry.insert(slots.strings.len() - 1)
                        }
                    };
                    let (owners, count) = if is_parameter {
                        (&mut slots.parameter_owners[id], &mut slots.parameter_slots)
                    } else {
                        (&mut slots.return_owners[id], &mut slots.return_slots)
                    };
                    *count += 1;
                    // Tools come in order, so a repeat can only be the last entry.
                    if owners.last() != Some(&tool) {
                        owners.push(tool);
                    }
                }
            }
        }
        slots
    }
}

/// The best evidence so far for one edge.
struct Best {
    score: f32,
    a_string: u32,
    b_string: u32,
}

fn keep_best(edges: &mut HashMap<(u32, u32), Best>, key: (u32, u32), candidate: Best) {
    match edges.entry(key) {
        Entry::Vacant(entry) => {
            entry.insert(candidate);
        }
        // Hits arrive in a fixed order, so the first of equal scores wins everywhere.
        Entry::Occupied(mut entry) => {
            if candidate.score > entry.get().score {
                entry.insert(candidate);
            }
        }
    }
}

/// Checks what every method needs: τ in range and unique tool names.
pub(crate) fn check_inputs<E: std::error::Error + 'static>(
    tools: &[Tool],
    options: &BuildOptions,
) -> Result<(), GraphError<E>> {
    if !(-1.0..1.0).contains(&options.tau) {
        return Err(GraphError::InvalidTau(options.tau));
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (position, tool) in tools.iter().enumerate() {
        if let Some(&first) = seen.get(tool.name.as_str()) {
            return Err(GraphError::DuplicateName {
                name: tool.name.clone(),
                first: first + 1,
                second: position + 1,
            });
        }
        seen.insert(&tool.name, position);
    }
    Ok(())
}

/// Checks the embedder's answer: one vector per string, all of one dimension (returned).
pub(crate) fn check_vectors<E: std::error::Error + 'static>(
    vectors: &[Vec<f32>],
    strings: usize,
) -> Result<usize, GraphError<E>> {
    if vectors.len() != strings {
        return Err(GraphError::EmbeddingCount {
            expected: strings,
            got: vectors.len(),
        });
    }
    let dim = vectors.first().map_or(0, Vec::len);
    if let Some((index, vector)) = vectors.iter().enumerate().find(|(_, v)| v.len() != dim) {
        return Err(GraphError::EmbeddingDimension {
            index,
            expected: dim,
            got: vector.len(),
        });
    }
    Ok(dim)
}

/// Builds the graph of `tools` by the paper's method. `embed` receives each distinct slot string once, in order of
/// first appearance, and must return one vector per string (unit length: the join takes the
/// dot product as the cosine).
pub fn build_graph<E: std::error::Error + 'static>(
    tools: &[Tool],
    options: &BuildOptions,
    embed: impl FnOnce(&[String]) -> Result<Vec<Vec<f32>>, E>,
) -> Result<(ToolGraph, BuildReport), GraphError<E>> {
    check_inputs(tools, options)?;

    let slots = SlotStrings::collect(tools);
    let started = Instant::now();
    let vectors = if slots.strings.is_empty() {
        Vec::new()
    } else {
        embed(&slots.strings).map_err(GraphError::Embed)?
    };
    let embed_time = started.elapsed();
    let dim = check_vectors(&vectors, slots.strings.len())?;

    let started = Instant::now();
    let parameter_ids: Vec<u32> = (0..slots.strings.len() as u32)
        .filter(|&s| !slots.parameter_owners[s as usize].is_empty())
        .collect();
    let return_ids: Vec<u32> = (0..slots.strings.len() as u32)
        .filter(|&s| !slots.return_owners[s as usize].is_empty())
        .collect();
    let matrix = |ids: &[u32]| {
        ids.iter()
            .flat_map(|&s| vectors[s as usize].iter().copied())
            .collect::<Vec<f32>>()
    };
    let (parameter_matrix, return_matrix) = (matrix(&parameter_ids), matrix(&return_ids));
    let parameters = Rows {
        data: &parameter_matrix,
        dim,
    };
    let returns = Rows {
        data: &return_matrix,
        dim,
    };
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let parameter_pairs = join(parameters, parameters, options.tau, true, threads);
    let return_pairs = join(returns, parameters, options.tau, false, threads);

    let mut param_param: HashMap<(u32, u32), Best> = HashMap::new();
    for hit in &parameter_pairs {
        let (x, y) = (
            parameter_ids[hit.left as usize],
            parameter_ids[hit.right as usize],
        );
        for &ti in &slots.parameter_owners[x as usize] {
            for &tj in &slots.parameter_owners[y as usize] {
                if ti == tj {
                    continue;
                }
                // The evidence's `a` string is the one on the earlier tool's side.
                let (key, a_string, b_string) = if ti < tj {
                    ((ti, tj), x, y)
                } else {
                    ((tj, ti), y, x)
                };
                keep_best(
                    &mut param_param,
                    key,
                    Best {
                        score: hit.score,
                        a_string,
                        b_string,
                    },
                );
            }
        }
    }
    let mut return_param: HashMap<(u32, u32), Best> = HashMap::new();
    for hit in &return_pairs {
        let (r, p) = (
            return_ids[hit.left as usize],
            parameter_ids[hit.right as usize],
        );
        for &producer in &slots.return_owners[r as usize] {
            for &consumer in &slots.parameter_owners[p as usize] {
                if producer != consumer {
                    keep_best(
                        &mut return_param,
                        (producer, consumer),
                        Best {
                            score: hit.score,
                            a_string: r,
                            b_string: p,
                        },
                    );
                }
            }
        }
    }

    let mut edges: Vec<(u32, u32, EdgeKind, Best)> = param_param
        .into_iter()
        .map(|((a, b), best)| (a, b, EdgeKind::ParamParam, best))
        .chain(
            return_param
                .into_iter()
                .map(|((a, b), best)| (a, b, EdgeKind::ReturnParam, best)),
        )
        .collect();
    // The edges of one pair of tools sit together: by (earlier, later) node, kind, producer.
    edges.sort_unstable_by_key(|&(a, b, kind, _)| (a.min(b), a.max(b), kind, a));
    let join_time = started.elapsed();

    let name = |tool: u32| tools[tool as usize].name.clone();
    let text = |string: u32| slots.strings[string as usize].clone();
    let graph = ToolGraph {
        nodes: tools.iter().map(|tool| tool.name.clone()).collect(),
        edges: edges
            .into_iter()
            .map(|(a, b, kind, best)| Edge {
                a: name(a),
                b: name(b),
                kind,
                score: best.score,
                evidence: Evidence {
                    a: text(best.a_string),
                    b: text(best.b_string),
                    links: Vec::new(),
                },
            })
            .collect(),
        meta: GraphMeta {
            method: toolflow_core::GraphMethod::Paper,
            tau: options.tau,
            model: options.model.clone(),
            tools_hash: options.tools_hash.clone(),
            strings: slots.strings.len(),
        },
    };
    let report = BuildReport {
        parameter_slots: slots.parameter_slots,
        return_slots: slots.return_slots,
        strings: slots.strings.len(),
        parameter_strings: parameter_ids.len(),
        return_strings: return_ids.len(),
        string_pairs: parameter_pairs.len() + return_pairs.len(),
        embed_time,
        join_time,
    };
    tracing::info!(
        strings = report.strings,
        string_pairs = report.string_pairs,
        edges = graph.edges.len(),
        embed_s = embed_time.as_secs_f64(),
        join_s = join_time.as_secs_f64(),
        "built the tool graph"
    );
    Ok((graph, report))
}
