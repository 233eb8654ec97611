//! What a scrape gets: OpenMetrics text for a scraper that asks for it (`Accept:
//! application/openmetrics-text`, as the Prometheus server does), the classic Prometheus text
//! format 0.0.4 otherwise (curl, `promtool check metrics`); and [`check`], which parses the
//! classic format and insists on HELP and TYPE for every series. Pure text, no I/O.

use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

/// A text format of the exposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text (counter families named without `_total`, `# EOF` at the end).
    OpenMetrics,
    /// The Prometheus text format 0.0.4 (counter families named with `_total`).
    Text,
}

impl Format {
    /// The format for a request's `Accept` header: OpenMetrics only when it is asked for.
    pub fn negotiate(accept: Option<&str>) -> Self {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Self::OpenMetrics,
            _ => Self::Text,
        }
    }

    /// The response's `content-type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Self::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// The registry's exposition in `format`.
pub fn encode(registry: &Registry, format: Format) -> String {
    let mut openmetrics = String::new();
    if prometheus_client::encoding::text::encode(&mut openmetrics, registry).is_err() {
        // Writing to a String fails only if a metric's own encoder does; serve what was written.
        tracing::warn!("metrics exposition incomplete");
    }
    match format {
        Format::OpenMetrics => openmetrics,
        Format::Text => to_text_format(&openmetrics),
    }
}

/// OpenMetrics text as the Prometheus text format 0.0.4: counter families take their samples'
/// `_total` name in HELP and TYPE, and `# EOF` and `# UNIT` lines go (0.0.4 has neither).
/// Gauge and histogram lines are the same in both formats.
pub fn to_text_format(openmetrics: &str) -> String {
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// One metric family of a checked exposition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyInfo {
    /// `counter`, `gauge`, `histogram`, `summary` or `untyped`.
    pub kind: String,
    /// Its HELP text.
    pub help: String,
    /// Samples it holds.
    pub samples: usize,
}

/// A checked exposition: its families by name and the name of every sample (`x_bucket`, …).
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    /// Families by name.
    pub families: BTreeMap<String, FamilyInfo>,
    /// Every sample name that occurs.
    pub sample_names: BTreeSet<String>,
}

/// What [`check`] found wrong, one line per problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<String>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

/// A family being read: declared by HELP and/or TYPE lines.
#[derive(Default)]
struct Declared {
    help: Option<String>,
    kind: Option<String>,
    samples: usize,
}

/// Parses an exposition in the Prometheus text format 0.0.4 and checks what `promtool check
/// metrics` checks and a little more: every sample belongs to the family declared just before
/// it, every family has one HELP (not empty) and one TYPE, counters are named `_total`, no
/// sample (name and labels) appears twice, and every value is a number.
pub fn check(text: &str) -> Result<Exposition, Problems> {
    let mut problems = Vec::new();
    let mut families: BTreeMap<String, Declared> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut seen = HashSet::new();
    let mut sample_names = BTreeSet::new();
    for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l)) {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            let (keyword, name, rest) = (words.next(), words.next(), words.next());
            let (Some(keyword @ ("HELP" | "TYPE")), Some(name)) = (keyword, name) else {
                continue;
            };
            let family = families.entry(name.to_string()).or_default();
            let slot = if keyword == "HELP" {
                &mut family.help
            } else {
                &mut family.kind
            };
            if slot.is_some() {
                problems.push(format!("line {n}: second {keyword} for {name}"));
            }
            *slot = Some(rest.unwrap_or("").to_string());
            if family.samples > 0 {
                problems.push(format!("line {n}: {keyword} for {name} after its samples"));
            }
            current = Some(name.to_string());
            continue;
        }
        let (name, labels, value) = match split_sample(line) {
            Ok(parts) => parts,
            Err(e) => {
                problems.push(format!("line {n}: {e}: {line}"));
                continue;
            }
        };
        if value.parse::<f64>().is_err() && !matches!(value, "+Inf" | "-Inf" | "NaN") {
            problems.push(format!("line {n}: value {value:?} is not a number"));
        }
        if !seen.insert(format!("{name}{labels}")) {
            problems.push(format!("line {n}: sample {name}{labels} appears twice"));
        }
        sample_names.insert(name.to_string());
        let owner = current
            .as_deref()
            .filter(|family| belongs(name, family, families.get(*family)));
        match owner.and_then(|f| families.get_mut(f)) {
            Some(family) => family.samples += 1,
            None => problems.push(format!(
                "line {n}: sample {name} has no HELP and TYPE of its own before it"
            )),
        }
    }
    let mut out = Exposition {
        families: BTreeMap::new(),
        sample_names,
    };
    for (name, family) in families {
        match (&family.help, &family.kind) {
            (None, _) => problems.push(format!("{name} has no HELP")),
            (Some(h), _) if h.trim().is_empty() => problems.push(format!("{name}: empty HELP")),
            (_, None) => problems.push(format!("{name} has no TYPE")),
            _ => {}
        }
        let kind = family.kind.unwrap_or_default();
        if !matches!(
            kind.as_str(),
            "counter" | "gauge" | "histogram" | "summary" | "untyped"
        ) {
            problems.push(format!("{name}: unknown TYPE {kind:?}"));
        }
        if kind == "counter" && !name.ends_with("_total") {
            problems.push(format!("{name}: a counter's name should end in _total"));
        }
        out.families.insert(
            name,
            FamilyInfo {
                kind,
                help: family.help.unwrap_or_default(),
                samples: family.samples,
            },
        );
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(Problems(problems))
    }
}

/// Whether a sample named `sample` belongs to `family` (a histogram's or summary's samples carry
/// suffixes).
fn belongs(sample: &str, family: &str, declared: Option<&Declared>) -> bool {
    if sample == family {
        return true;
    }
    let suffixes: &[&str] = match declared.and_then(|d| d.kind.as_deref()) {
        Some("histogram") => &["_bucket", "_sum", "_count"],
        Some("summary") => &["_sum", "_count"],
        _ => &[],
    };
    sample
        .strip_prefix(family)
        .is_some_and(|rest| suffixes.contains(&rest))
}

/// A sample line's name, its label text (`{…}` or empty) and its value.
fn split_sample(line: &str) -> Result<(&str, &str, &str), &'static str> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("no value")?;
    let (name, rest) = line.split_at(name_end);
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        || name.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err("bad metric name");
    }
    let (labels, rest) = if rest.starts_with('{') {
        let end = label_end(rest).ok_or("unterminated labels")?;
        rest.split_at(end)
    } else {
        ("", rest)
    };
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("no value")?;
    match (fields.next(), fields.next()) {
        (None, _) => {}
        (Some(ts), None) if ts.parse::<i64>().is_ok() => {}
        _ => return Err("trailing text after the value"),
    }
    Ok((name, labels, value))
}

/// The index just past the `}` closing the label set that `text` starts with.
fn label_end(text: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match (quoted, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, false, '"') => quoted = !quoted,
            (false, _, '}') => return Some(i + 1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::gauge::Gauge;

    fn sample_registry() -> Registry {
        let mut r = Registry::default();
        let c: Counter = Counter::default();
        c.inc_by(3);
        r.register("entroshard_things", "Things counted", c);
        let g: Gauge = Gauge::default();
        g.set(7);
        r.register("entroshard_level", "A level", g);
        let h = crate::telemetry::histogram(&[0.1, 1.0]);
        h.observe(0.5);
        r.register("entroshard_wait_seconds", "Waits", h);
        r
    }

    #[test]
    fn openmetrics_is_served_only_to_a_scraper_that_asks_for_it() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
        assert_eq!(Format::negotiate(None), Format::Text);
    }

    #[test]
    fn the_text_format_names_counter_families_with_total_and_has_no_eof() {
        let r = sample_registry();
        let open = encode(&r, Format::OpenMetrics);
        assert!(open.contains("# TYPE entroshard_things counter\n"));
        assert!(open.ends_with("# EOF\n"));
        let text = encode(&r, Format::Text);
        for line in [
            "# HELP entroshard_things_total Things counted.\n",
            "# TYPE entroshard_things_total counter\n",
            "entroshard_things_total 3\n",
            "# TYPE entroshard_level gauge\n",
            "entroshard_level 7\n",
            "# TYPE entroshard_wait_seconds histogram\n",
            "entroshard_wait_seconds_bucket{le=\"1.0\"} 1\n",
            "entroshard_wait_seconds_count 1\n",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(!text.contains("# EOF"));
        let checked = check(&text).unwrap();
        assert_eq!(checked.families["entroshard_things_total"].kind, "counter");
        assert_eq!(checked.families["entroshard_wait_seconds"].samples, 5);
        assert!(
            checked
                .sample_names
                .contains("entroshard_wait_seconds_bucket")
        );
    }

    #[test]
    fn a_sample_without_help_or_type_is_named() {
        let problems = check("# TYPE a_total counter\na_total 1\nb 2\n")
            .unwrap_err()
            .0;
        assert!(problems.iter().any(|p| p.contains("a_total has no HELP")));
        assert!(problems.iter().any(|p| p.contains("sample b has no HELP")));
    }

    #[test]
    fn openmetrics_counters_fed_to_the_text_parser_are_caught() {
        let open = encode(&sample_registry(), Format::OpenMetrics);
        let problems = check(&open).unwrap_err().0;
        assert!(
            problems
                .iter()
                .any(|p| p.contains("sample entroshard_things_total has no HELP")),
            "{problems:?}"
        );
    }

    #[test]
    fn duplicates_bad_values_and_misnamed_counters_are_named() {
        let text = "# HELP c Count.\n# TYPE c counter\nc{a=\"x}\\\"\"} 1\nc{a=\"x}\\\"\"} 2\n\
                    # HELP g G.\n# TYPE g gauge\ng one\n";
        let problems = check(text).unwrap_err().0;
        assert!(
            problems.iter().any(|p| p.contains("appears twice")),
            "{problems:?}"
        );
        assert!(problems.iter().any(|p| p.contains("not a number")));
        assert!(problems.iter().any(|p| p.contains("should end in _total")));
    }
}
