//! The importer: files in, one tool set out, with names kept unique and every skip, rename
//! and repair recorded.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;
use toolflow_core::Tool;

use crate::format::Format;
use crate::report::{Diagnostic, FileSummary, Issue, Location, Summary};
use crate::{detect, document, formats, names, schema};

/// How files are read.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Read every file as this format instead of detecting it.
    pub format: Option<Format>,
    /// Fail on the first file or entry that would be skipped.
    pub strict: bool,
}

/// The tools read, in input order, and what happened on the way.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// The tools, uniquely named.
    pub tools: Vec<Tool>,
    /// The counts of each file, in input order.
    pub files: Vec<FileSummary>,
    /// Every skip, rename and repair, in input order.
    pub diagnostics: Vec<Diagnostic>,
}

impl ImportReport {
    /// The totals and grouped issues of the whole import.
    pub fn summary(&self) -> Summary {
        Summary::new(&self.files, &self.diagnostics)
    }
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Nothing to import.
    #[error("no input paths given")]
    NoInputs,
    /// Strict mode met something it would otherwise have skipped.
    #[error("{0} ({issue}; strict mode stops here)", issue = .0.issue.describe())]
    Strict(Diagnostic),
}

/// Imports every file under `paths` (directories are walked for `.json`, `.jsonl`, `.yaml`
/// and `.yml` files, in name order).
pub fn import_paths<P: AsRef<Path>>(
    paths: &[P],
    options: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    if paths.is_empty() {
        return Err(ImportError::NoInputs);
    }
    let mut importer = Importer::new(options.clone());
    for path in paths {
        importer.add_path(path.as_ref())?;
    }
    Ok(importer.finish())
}

/// Imports files one by one into one tool set, so that names stay unique across them.
pub struct Importer {
    options: ImportOptions,
    report: ImportReport,
    /// Every name handed out.
    taken: HashSet<String>,
    /// Content hashes of kept definitions, by the name the source gave (made valid).
    kept_definitions: HashSet<(String, String)>,
    /// The next suffix to try, by base name.
    next_suffix: HashMap<String, usize>,
}

impl Importer {
    /// An importer with no tools yet.
    pub fn new(options: ImportOptions) -> Importer {
        Importer {
            options,
            report: ImportReport::default(),
            taken: HashSet::new(),
            kept_definitions: HashSet::new(),
            next_suffix: HashMap::new(),
        }
    }

    /// A file, or every tool file under a directory.
    pub fn add_path(&mut self, path: &Path) -> Result<(), ImportError> {
        if !path.is_dir() {
            return self.add_file(path);
        }
        let mut files = Vec::new();
        if let Err(error) = collect_files(path, &mut files) {
            let location = Location {
                file: path.to_path_buf(),
                line: None,
                pointer: String::new(),
            };
            return self.fail_file(
                path,
                location,
                Issue::UnreadableFile,
                format!("cannot list the directory: {error}"),
            );
        }
        for file in files {
            self.add_file(&file)?;
        }
        Ok(())
    }

    /// One file, whatever its name; an unreadable one is a diagnostic unless strict.
    pub fn add_file(&mut self, path: &Path) -> Result<(), ImportError> {
        match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => self.add_text(path, &text),
                Err(error) => {
                    let location = Location {
                        file: path.to_path_buf(),
                        line: None,
                        pointer: String::new(),
                    };
                    self.fail_file(
                        path,
                        location,
                        Issue::InvalidSyntax,
                        format!("not UTF-8 text: {error}"),
                    )
                }
            },
            Err(error) => {
                let location = Location {
                    file: path.to_path_buf(),
                    line: None,
                    pointer: String::new(),
                };
                self.fail_file(
                    path,
                    location,
                    Issue::UnreadableFile,
                    format!("cannot read: {error}"),
                )
            }
        }
    }

    /// The contents of a file; `origin` names it in diagnostics and `meta.origin`, and its
    /// extension picks YAML or JSON Lines parsing.
    pub fn add_text(&mut self, origin: &Path, text: &str) -> Result<(), ImportError> {
        let extension = origin
            .extension()
            .and_then(|extension| extension.to_str())
            .unwrap_or("");
        let at = |line: Option<usize>, pointer: String| Location {
            file: origin.to_path_buf(),
            line,
            pointer,
        };
        let document = match document::parse(text, extension) {
            Ok(document) => document,
            Err(error) => {
                return self.fail_file(
                    origin,
                    at(error.line, String::new()),
                    Issue::InvalidSyntax,
                    error.message,
                );
            }
        };
        if let (None, Some((line, message))) =
            (document.records.first(), document.bad_lines.first())
        {
            return self.fail_file(
                origin,
                at(Some(*line), String::new()),
                Issue::InvalidSyntax,
                message.clone(),
            );
        }
        let format = match self.options.format {
            Some(format) => format,
            None => match document
                .records
                .first()
                .and_then(|record| detect::detect(&record.value))
            {
                Some(format) => format,
                None => {
                    let shape = document.records.first().map_or_else(
                        || "no JSON records".to_string(),
                        |record| describe_shape(&record.value),
                    );
                    let message = format!(
                        "not a recognized tool format ({shape}); expected OpenAI tools, a ToolBench api_list, OpenAPI/Swagger, \
                         an MCP tools/list result, BFCL functions, API-Bank APIs or toolflow tools (or pass a format)"
                    );
                    let line = document.records.first().and_then(|record| record.line);
                    return self.fail_file(
                        origin,
                        at(line, String::new()),
                        Issue::UnrecognizedFormat,
                        message,
                    );
                }
            },
        };
        let file_index = self.report.files.len();
        self.report.files.push(FileSummary {
            path: origin.to_path_buf(),
            format: Some(format),
            ..FileSummary::default()
        });
        let diagnostics_before = self.report.diagnostics.len();

        let mut bad_lines = document.bad_lines.iter().peekable();
        let context = formats::Context { path: origin };
        for record in document.records {
            while let Some((line, message)) = bad_lines
                .next_if(|(line, _)| record.line.is_some_and(|record_line| *line < record_line))
            {
                self.skip(
                    file_index,
                    at(Some(*line), String::new()),
                    Issue::InvalidSyntax,
                    message.clone(),
                )?;
            }
            let mut entries = Vec::new();
            formats::read(format, &record.value, &context, &mut entries);
            for entry in entries {
                self.accept(file_index, entry, record.line, origin)?;
            }
        }
        for (line, message) in bad_lines {
            self.skip(
                file_index,
                at(Some(*line), String::new()),
                Issue::InvalidSyntax,
                message.clone(),
            )?;
        }
        warn_per_issue(origin, &self.report.diagnostics[diagnostics_before..]);
        Ok(())
    }

    /// The tools and diagnostics of every file added.
    pub fn finish(self) -> ImportReport {
        self.report
    }

    /// Repairs, validates, names and deduplicates one entry.
    fn accept(
        &mut self,
        file_index: usize,
        entry: formats::Entry,
        line: Option<usize>,
        origin: &Path,
    ) -> Result<(), ImportError> {
        let location = |pointer: &str| Location {
            file: origin.to_path_buf(),
            line,
            pointer: pointer.to_string(),
        };
        let mut tool = match entry.outcome {
            Ok(tool) => tool,
            Err(problem) => {
                let pointer = if problem.pointer.is_empty() {
                    &entry.pointer
                } else {
                    &problem.pointer
                };
                return self.skip(
                    file_index,
                    location(pointer),
                    problem.issue,
                    problem.message,
                );
            }
        };
        let mut fixes = entry.fixes;
        match schema::normalize(&mut tool) {
            Ok(more) => fixes.extend(more),
            Err(problem) => {
                return self.skip(
                    file_index,
                    location(&entry.pointer),
                    problem.issue,
                    problem.message,
                );
            }
        }
        let source_name = tool.name.clone();
        let base = names::function_name(&source_name);
        if base.is_empty() {
            let message =
                format!("the name `{source_name}` has no characters usable in a function name");
            return self.skip(
                file_index,
                location(&entry.pointer),
                Issue::MissingName,
                message,
            );
        }

        self.report.files[file_index].read += 1;
        let definition = toolflow_core::content_hash(&[
            tool.description.as_bytes(),
            tool.parameters.to_string().as_bytes(),
            tool.returns
                .as_ref()
                .map(Value::to_string)
                .unwrap_or_default()
                .as_bytes(),
        ]);
        if !self.kept_definitions.insert((base.clone(), definition)) {
            self.report.files[file_index].deduplicated += 1;
            return Ok(());
        }
        let renamed = self.taken.contains(&base);
        let name = if renamed {
            self.fresh_name(&base)
        } else {
            base
        };
        self.taken.insert(name.clone());
        if name != source_name {
            tool.meta
                .insert("original_name".into(), source_name.clone().into());
        }
        let file = &mut self.report.files[file_index];
        if renamed {
            tool.meta.insert("name_collision".into(), true.into());
            file.renamed += 1;
            let message = format!(
                "`{source_name}` is already taken by a different definition; kept as `{name}`"
            );
            self.report.diagnostics.push(Diagnostic {
                issue: Issue::Renamed,
                location: location(&entry.pointer),
                message,
            });
        }
        if !fixes.is_empty() {
            file.repaired += 1;
            let message = format!("`{name}`: {}", fixes.join(", "));
            self.report.diagnostics.push(Diagnostic {
                issue: Issue::SchemaRepaired,
                location: location(&entry.pointer),
                message,
            });
            let recorded = tool
                .meta
                .entry("schema_fixes")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(recorded) = recorded {
                recorded.extend(fixes.into_iter().map(Value::String));
            }
        }
        tool.name = name;
        tool.meta
            .entry("origin")
            .or_insert_with(|| origin.display().to_string().into());
        file.kept += 1;
        self.report.tools.push(tool);
        Ok(())
    }

    /// The first `{base}_{n}` (n ≥ 2) not yet taken.
    fn fresh_name(&mut self, base: &str) -> String {
        let next = self.next_suffix.entry(base.to_string()).or_insert(2);
        loop {
            let candidate = names::with_suffix(base, *next);
            *next += 1;
            if !self.taken.contains(&candidate) {
                return candidate;
            }
        }
    }

    /// The diagnostic of something about to be skipped; in strict mode, the error instead.
    fn unless_strict(
        &self,
        location: Location,
        issue: Issue,
        message: String,
    ) -> Result<Diagnostic, ImportError> {
        let diagnostic = Diagnostic {
            issue,
            location,
            message,
        };
        if self.options.strict {
            return Err(ImportError::Strict(diagnostic));
        }
        Ok(diagnostic)
    }

    /// Records a skipped entry (or fails, in strict mode).
    fn skip(
        &mut self,
        file_index: usize,
        location: Location,
        issue: Issue,
        message: String,
    ) -> Result<(), ImportError> {
        let diagnostic = self.unless_strict(location, issue, message)?;
        tracing::debug!("skipped {diagnostic}");
        let file = &mut self.report.files[file_index];
        file.read += 1;
        file.skipped += 1;
        self.report.diagnostics.push(diagnostic);
        Ok(())
    }

    /// Records a file that failed as a whole (or fails, in strict mode).
    fn fail_file(
        &mut self,
        path: &Path,
        location: Location,
        issue: Issue,
        message: String,
    ) -> Result<(), ImportError> {
        let diagnostic = self.unless_strict(location, issue, message)?;
        tracing::warn!("skipped file {diagnostic}");
        self.report.files.push(FileSummary {
            path: path.to_path_buf(),
            error: Some(diagnostic.message.clone()),
            ..FileSummary::default()
        });
        self.report.diagnostics.push(diagnostic);
        Ok(())
    }
}

/// One warning per file and kind of issue, not one per entry: a corpus with hundreds of
/// renames should not bury the summary.
fn warn_per_issue(origin: &Path, diagnostics: &[Diagnostic]) {
    let mut seen: Vec<Issue> = Vec::new();
    for diagnostic in diagnostics {
        if seen.contains(&diagnostic.issue) {
            continue;
        }
        seen.push(diagnostic.issue);
        let count = diagnostics
            .iter()
            .filter(|other| other.issue == diagnostic.issue)
            .count();
        let what = if diagnostic.issue.is_skip() {
            "skipped"
        } else {
            "noted"
        };
        tracing::warn!(
            "{}: {what} {count} × {}, first: {diagnostic}",
            origin.display(),
            diagnostic.issue.describe()
        );
    }
}

/// For messages: the keys of an object, or what else it is.
fn describe_shape(value: &Value) -> String {
    let keys = |object: &serde_json::Map<String, Value>| {
        object
            .keys()
            .take(6)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    };
    match value {
        Value::Object(object) => format!("an object with keys: {}", keys(object)),
        Value::Array(items) => match items.iter().find_map(Value::as_object) {
            Some(object) => format!("a list of objects with keys: {}", keys(object)),
            None => "a list without objects".to_string(),
        },
        other => document::kind(other).to_string(),
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        let hidden = path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            collect_files(&path, out)?;
        } else if path
            .extension()
            .and_then(|extension| extension.to_str())
            .is_some_and(|extension| {
                matches!(
                    extension.to_ascii_lowercase().as_str(),
                    "json" | "jsonl" | "ndjson" | "yaml" | "yml"
                )
            })
        {
            out.push(path);
        }
    }
    Ok(())
}
