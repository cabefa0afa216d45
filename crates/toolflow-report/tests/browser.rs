//! The report in a real browser: headless Chromium renders it (a screenshot is saved under
//! the target directory), and the dialogue browser's script filters and shows dialogues
//! without ever turning dataset text into markup. Skips, saying so, where Chromium is not
//! installed (`apt-get install chromium`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use toolflow_report::{ReportInputs, render};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/run");
/// Well above a healthy start (a second or two), well below a hung browser.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Writes the fixture run's report into `dir`; returns its path.
fn write_report(dir: &Path) -> PathBuf {
    let inputs = ReportInputs::from_run_dir(FIXTURES.as_ref()).unwrap();
    let path = dir.join("report.html");
    std::fs::write(&path, render(&inputs).unwrap()).unwrap();
    path
}

/// Runs headless Chromium with a profile of its own (tests run in parallel) and returns
/// its stdout; fails the test if it exits badly or hangs.
fn run_chromium(chromium: &Path, args: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            panic!("chromium did not finish within {BROWSER_TIMEOUT:?}: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "chromium failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn file_url(path: &Path, query: &str) -> String {
    format!("file://{}{query}", path.canonicalize().unwrap().display())
}

/// The DOM after the page's script ran, for `?q=query`.
fn dom_for_query(chromium: &Path, report: &Path, query: &str) -> String {
    run_chromium(
        chromium,
        &[
            "--dump-dom".into(),
            file_url(report, &format!("?q={query}")),
        ],
    )
}

/// The ids of the list items the browser shows, in order.
fn listed_ids(dom: &str) -> Vec<&str> {
    dom.split("<li class=\"dialogue-item")
        .skip(1)
        .map(|item| {
            let start =
                item.find("data-id=\"").expect("list item without data-id") + "data-id=\"".len();
            &item[start..start + item[start..].find('"').unwrap()]
        })
        .collect()
}

fn detail_id(dom: &str) -> Option<&str> {
    let article = &dom[dom.find("<article id=\"dialogue-detail\"")?..];
    let tag = &article[..article.find('>')?];
    let start = tag.find("data-id=\"")? + "data-id=\"".len();
    Some(&tag[start..start + tag[start..].find('"')?])
}

macro_rules! require_chromium {
    () => {
        match chromium() {
            Some(path) => path,
            None => {
                eprintln!("skipped: chromium not found (apt-get install chromium)");
                return;
            }
        }
    };
}

#[test]
fn report_renders_to_a_screenshot() {
    let chromium = require_chromium!();
    let dir = tempfile::tempdir().unwrap();
    let report = write_report(dir.path());
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshot.png");
    let _ = std::fs::remove_file(&screenshot);
    run_chromium(
        &chromium,
        &[
            format!("--screenshot={}", screenshot.display()),
            "--window-size=1280,2000".into(),
            file_url(&report, ""),
        ],
    );
    let png = std::fs::read(&screenshot).expect("chromium wrote no screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    // IHDR: width and height, big-endian, right after the signature and chunk header.
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1280, 2000));
    // A blank or error page compresses to a few KB; the report's tables and chart do not.
    assert!(
        png.len() > 60_000,
        "screenshot suspiciously small: {} bytes",
        png.len()
    );
    println!("screenshot: {} ({} bytes)", screenshot.display(), png.len());
}

#[test]
fn search_filters_the_list_and_shows_the_first_match() {
    let chromium = require_chromium!();
    let dir = tempfile::tempdir().unwrap();
    let report = write_report(dir.path());

    // By text across turns and tool names: the two weather dialogues, the first one shown.
    let dom = dom_for_query(&chromium, &report, "weather");
    assert_eq!(listed_ids(&dom), ["dlg-0000-7c1e", "dlg-0002-e04f"]);
    assert_eq!(detail_id(&dom), Some("dlg-0000-7c1e"));
    assert!(dom.contains("2 of 4 dialogues match"));
    assert!(dom.contains("<li class=\"dialogue-item selected\" data-id=\"dlg-0000-7c1e\">"));
    // The detail view: plan, context, role-styled turns, the call's JSON arguments, the
    // tool error highlighted.
    assert!(dom.contains("Ask for the weather forecast in Lyon for the next three days."));
    assert!(dom.contains("Paris, France"));
    assert!(dom.contains("class=\"turn role-user\""));
    assert!(dom.contains("class=\"turn role-tool error\""));
    assert!(dom.contains("\"days\": \"three\""));

    // Dataset text is text: the hostile message shows escaped and injects no element.
    assert!(dom.contains(
        "Is it \"nice\" &amp; warm there? &lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    ));
    assert!(!dom.contains("<img"), "an <img> element was injected");

    // Case-insensitive, by tool name; and by id.
    let dom = dom_for_query(&chromium, &report, "CONVERT_Currency");
    assert_eq!(listed_ids(&dom), ["dlg-0001-a93b"]);
    assert_eq!(detail_id(&dom), Some("dlg-0001-a93b"));
    let dom = dom_for_query(&chromium, &report, "dlg-0002");
    assert_eq!(listed_ids(&dom), ["dlg-0002-e04f"]);
    // The rejected dialogue shows its filter reasons, with their text escaped too.
    assert!(dom.contains("unknown-tool"));
    assert!(dom.contains("&lt;img src=x onerror=alert(2)&gt;"));
    assert!(!dom.contains("<img"));

    // A link to a dialogue (as the rejection examples make) selects it, clearing a search
    // that hides it.
    let dom = run_chromium(
        &chromium,
        &[
            "--dump-dom".into(),
            file_url(&report, "?q=weather#dialogue=dlg-0003-51d0"),
        ],
    );
    assert_eq!(detail_id(&dom), Some("dlg-0003-51d0"));
    assert_eq!(listed_ids(&dom).len(), 4);
    assert!(dom.contains("No plan (plan-off ablation or human data)."));

    // No match: an empty list and a detail view that says so.
    let dom = dom_for_query(&chromium, &report, "no-such-dialogue-anywhere");
    assert!(listed_ids(&dom).is_empty());
    assert_eq!(detail_id(&dom), None);
    assert!(dom.contains("No dialogue matches."));
}
