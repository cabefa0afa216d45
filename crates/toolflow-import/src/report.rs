//! What an import found besides tools: where each problem sits, why, and the counts the
//! summary prints.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::format::Format;

/// A place in the input: the file as given, the line for JSON Lines, and a JSON pointer
/// into the record (empty for the whole record or file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// The file, as given.
    pub file: PathBuf,
    /// The line, 1-based, in a JSON Lines file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// A JSON pointer into the record or file.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pointer: String,
}

impl fmt::Display for Location {
    /// `file`, `file:line`, `file#/pointer` or `file:line#/pointer`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.pointer.is_empty() {
            write!(f, "#{}", self.pointer)?;
        }
        Ok(())
    }
}

/// Why an entry or file was skipped, renamed or changed. Skips lose data; the others do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Issue {
    /// The file could not be read.
    UnreadableFile,
    /// Not valid JSON, JSON Lines or YAML (the whole file, or one line of JSON Lines).
    InvalidSyntax,
    /// Valid data, but in none of the known tool formats.
    UnrecognizedFormat,
    /// An entry without a usable name.
    MissingName,
    /// A field of the wrong JSON type (e.g. `parameters` given as a string).
    WrongType,
    /// `parameters` is a schema, but not of an object.
    NonObjectParameters,
    /// A schema that stays invalid after the known repairs.
    InvalidSchema,
    /// An OpenAPI `$ref` that points nowhere or outside the document.
    BadReference,
    /// An OpenAI tool entry of another type (e.g. `web_search`).
    NotAFunction,
    /// The name was taken by a different definition; a `_2`, `_3`… suffix was added.
    Renamed,
    /// Small known schema problems were fixed; listed in the tool's `meta.schema_fixes`.
    SchemaRepaired,
}

impl Issue {
    /// True for issues that drop an entry or a file.
    pub fn is_skip(self) -> bool {
        !matches!(self, Issue::Renamed | Issue::SchemaRepaired)
    }

    /// A few words for the summary's table.
    pub fn describe(self) -> &'static str {
        match self {
            Issue::UnreadableFile => "unreadable file",
            Issue::InvalidSyntax => "invalid JSON/YAML",
            Issue::UnrecognizedFormat => "unrecognized format",
            Issue::MissingName => "missing name",
            Issue::WrongType => "field of the wrong type",
            Issue::NonObjectParameters => "parameters not an object schema",
            Issue::InvalidSchema => "invalid JSON Schema",
            Issue::BadReference => "unresolvable $ref",
            Issue::NotAFunction => "not a function tool",
            Issue::Renamed => "duplicate name renamed",
            Issue::SchemaRepaired => "schema repaired",
        }
    }
}

/// One problem, where it is, and what happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    /// What kind of problem.
    pub issue: Issue,
    /// Where.
    pub location: Location,
    /// What exactly, for a person.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Counts for one input file. `read = kept + deduplicated + skipped` (entries); a file
/// that fails as a whole has `error` set and counts nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FileSummary {
    /// The file, as given.
    pub path: PathBuf,
    /// The format it was read as; none when it could not be read or recognised.
    pub format: Option<Format>,
    /// Entries read.
    pub read: usize,
    /// Entries kept as tools.
    pub kept: usize,
    /// Kept under a suffixed name because another definition had the name.
    pub renamed: usize,
    /// Identical to a tool already kept (same name, description and schemas): dropped silently.
    pub deduplicated: usize,
    /// Entries dropped for a problem (see the diagnostics).
    pub skipped: usize,
    /// Kept after schema repairs.
    pub repaired: usize,
    /// Why the whole file failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The counts and grouped reasons an import run ends with (`--json` prints this).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Input files.
    pub files: usize,
    /// Files that failed as a whole (unreadable, not parseable, not recognised).
    pub files_failed: usize,
    /// Entries read, over all files.
    pub read: usize,
    /// Entries kept as tools.
    pub kept: usize,
    /// Kept under a suffixed name.
    pub renamed: usize,
    /// Dropped as identical to a tool already kept.
    pub deduplicated: usize,
    /// Dropped for a problem.
    pub skipped: usize,
    /// Kept after schema repairs.
    pub repaired: usize,
    /// The counts of each file.
    pub per_file: Vec<FileSummary>,
    /// Diagnostics grouped by issue, most frequent first.
    pub issues: Vec<IssueGroup>,
}

/// The diagnostics of one issue, counted, with a few examples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IssueGroup {
    /// The issue.
    pub issue: Issue,
    /// Whether it drops data ([`Issue::is_skip`]).
    pub skip: bool,
    /// How many diagnostics have it.
    pub count: usize,
    /// The first few, in input order, as `location: message`.
    pub examples: Vec<String>,
}

/// How many examples each issue group keeps.
const EXAMPLES_PER_ISSUE: usize = 3;

impl Summary {
    pub(crate) fn new(files: &[FileSummary], diagnostics: &[Diagnostic]) -> Summary {
        let total = |count: fn(&FileSummary) -> usize| files.iter().map(count).sum();
        let mut groups: Vec<IssueGroup> = Vec::new();
        for diagnostic in diagnostics {
            let group = match groups
                .iter_mut()
                .find(|group| group.issue == diagnostic.issue)
            {
                Some(group) => group,
                None => {
                    groups.push(IssueGroup {
                        issue: diagnostic.issue,
                        skip: diagnostic.issue.is_skip(),
                        count: 0,
                        examples: Vec::new(),
                    });
                    groups.last_mut().expect("just pushed")
                }
            };
            group.count += 1;
            if group.examples.len() < EXAMPLES_PER_ISSUE {
                group.examples.push(diagnostic.to_string());
            }
        }
        groups.sort_by(|a, b| {
            b.skip
                .cmp(&a.skip)
                .then(b.count.cmp(&a.count))
                .then(a.issue.cmp(&b.issue))
        });
        Summary {
            files: files.len(),
            files_failed: files.iter().filter(|file| file.error.is_some()).count(),
            read: total(|f| f.read),
            kept: total(|f| f.kept),
            renamed: total(|f| f.renamed),
            deduplicated: total(|f| f.deduplicated),
            skipped: total(|f| f.skipped),
            repaired: total(|f| f.repaired),
            per_file: files.to_vec(),
            issues: groups,
        }
    }
}

impl fmt::Display for Summary {
    /// The human summary: totals, one line per file, then reasons with counts and examples.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "imported {} file(s): read {}, kept {}, renamed {}, deduplicated {}, skipped {}, repaired {}",
            self.files,
            self.read,
            self.kept,
            self.renamed,
            self.deduplicated,
            self.skipped,
            self.repaired
        )?;
        for file in &self.per_file {
            let format = file.format.map_or("?", Format::name);
            match &file.error {
                Some(error) => {
                    writeln!(f, "  {} ({format}): failed: {error}", file.path.display())?
                }
                None => writeln!(
                    f,
                    "  {} ({format}): read {}, kept {}, renamed {}, deduplicated {}, skipped {}, repaired {}",
                    file.path.display(),
                    file.read,
                    file.kept,
                    file.renamed,
                    file.deduplicated,
                    file.skipped,
                    file.repaired
                )?,
            }
        }
        for group in &self.issues {
            let verb = if group.skip { "skipped" } else { "note" };
            writeln!(f, "{verb}: {} × {}", group.count, group.issue.describe())?;
            for example in &group.examples {
                writeln!(f, "    {example}")?;
            }
        }
        Ok(())
    }
}

/// Why a reader could not produce a tool; `pointer` is absolute within the record, or empty
/// to mean the entry itself.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Problem {
    pub issue: Issue,
    pub pointer: String,
    pub message: String,
}
