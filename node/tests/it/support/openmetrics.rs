//! A strict, small OpenMetrics text parser for the metrics tests: it rejects what the
//! OpenMetrics 1.0 text format forbids and what braid's metrics must never do.
//!
//! Checked: every line is `# HELP`, `# TYPE`, `# UNIT`, a sample or the final `# EOF` (nothing
//! after it, no blank line); metadata precedes its family's samples and a family appears once;
//! `# UNIT u` only on a family whose name ends in `_u`; a counter family's name does not end
//! in `_total` and its samples are `<family>_total`; a gauge's sample is the family name; a
//! histogram has `_bucket` samples with `le` labels, non-decreasing, the last `+Inf` and equal
//! to `_count`, plus `_sum`; names and label names are valid; label values are quoted with
//! only `\\`, `\"` and `\n` escapes; values are numbers; no sample (name and labels) repeats.

use std::collections::{BTreeMap, HashSet};

/// One sample: its name, labels (sorted) and value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) value: f64,
}

/// A parsed exposition.
#[derive(Debug, Default)]
pub(crate) struct Exposition {
    /// Family name to its type.
    pub(crate) types: BTreeMap<String, String>,
    /// Family name to its unit, where given.
    pub(crate) units: BTreeMap<String, String>,
    pub(crate) samples: Vec<Sample>,
}

impl Exposition {
    /// The value of the sample `name` whose labels include every `(key, value)` of `labels`;
    /// panics unless exactly one matches.
    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect();
        assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
        found[0].value
    }

    /// Whether a sample `name` exists.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }

    /// Every label value of every sample.
    pub(crate) fn label_values(&self) -> Vec<&str> {
        self.samples
            .iter()
            .flat_map(|s| s.labels.values().map(String::as_str))
            .collect()
    }
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(n: &str) -> bool {
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses `name{k="v",...} value` (no timestamps or exemplars: braid emits none).
fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| format!("no value: {line}"))?;
    let name = &line[..name_end];
    if !valid_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        let mut s = after;
        loop {
            if let Some(r) = s.strip_prefix('}') {
                s = r;
                break;
            }
            let eq = s.find('=').ok_or_else(|| format!("bad labels: {line}"))?;
            let key = &s[..eq];
            if !valid_label_name(key) {
                return Err(format!("bad label name {key:?} in {line}"));
            }
            s = s[eq + 1..]
                .strip_prefix('"')
                .ok_or_else(|| format!("unquoted label value: {line}"))?;
            let mut value = String::new();
            let mut chars = s.char_indices();
            let end = loop {
                match chars.next() {
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        _ => return Err(format!("bad escape in {line}")),
                    },
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("unterminated label value: {line}")),
                }
            };
            if labels.insert(key.to_string(), value).is_some() {
                return Err(format!("label {key} twice: {line}"));
            }
            s = &s[end + 1..];
            if let Some(r) = s.strip_prefix(',') {
                s = r;
            } else if !s.starts_with('}') {
                return Err(format!("bad label separator: {line}"));
            }
        }
        rest = s;
    }
    let value_text = rest
        .strip_prefix(' ')
        .ok_or_else(|| format!("no space before the value: {line}"))?;
    if value_text.contains(' ') {
        return Err(format!("timestamps or exemplars not expected: {line}"));
    }
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v
            .parse::<f64>()
            .map_err(|_| format!("bad value {v:?}: {line}"))?,
    };
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Whether `sample` belongs to `family` of `kind`.
fn belongs(sample: &str, family: &str, kind: &str) -> bool {
    match kind {
        "counter" => sample == format!("{family}_total") || sample == format!("{family}_created"),
        "gauge" | "unknown" => sample == family,
        "histogram" => ["_bucket", "_sum", "_count", "_created"]
            .iter()
            .any(|suffix| sample == format!("{family}{suffix}")),
        _ => false,
    }
}

/// Parses and checks `text`.
pub(crate) fn parse(text: &str) -> Result<Exposition, String> {
    let body = text
        .strip_suffix("# EOF\n")
        .or_else(|| text.strip_suffix("# EOF"))
        .ok_or("the text does not end with # EOF")?;
    let mut out = Exposition::default();
    let mut current: Option<(String, String)> = None; // family, type
    let mut seen_samples_of_current = false;
    let mut families_done: HashSet<String> = HashSet::new();
    let mut sample_keys: HashSet<String> = HashSet::new();
    // Histogram checks per family: (last cumulative, +Inf count) and the _count.
    let mut buckets: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    let mut counts: BTreeMap<String, f64> = BTreeMap::new();
    for line in body.lines() {
        if line.is_empty() {
            return Err("blank line".into());
        }
        if let Some(meta) = line.strip_prefix("# ") {
            let mut parts = meta.splitn(3, ' ');
            let (what, family) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let arg = parts.next().unwrap_or("");
            if !valid_name(family) {
                return Err(format!("bad family name in {line}"));
            }
            let same = current.as_ref().is_some_and(|(f, _)| f == family);
            if !same {
                if let Some((f, _)) = current.take() {
                    families_done.insert(f);
                }
                if families_done.contains(family) {
                    return Err(format!("family {family} appears twice"));
                }
                current = Some((family.to_string(), "unknown".into()));
                seen_samples_of_current = false;
            } else if seen_samples_of_current {
                return Err(format!("metadata after samples: {line}"));
            }
            match what {
                "HELP" => {}
                "TYPE" => {
                    let ok = [
                        "counter",
                        "gauge",
                        "histogram",
                        "gaugehistogram",
                        "stateset",
                        "info",
                        "summary",
                        "unknown",
                    ];
                    if !ok.contains(&arg) {
                        return Err(format!("bad type: {line}"));
                    }
                    if out
                        .types
                        .insert(family.to_string(), arg.to_string())
                        .is_some()
                    {
                        return Err(format!("two TYPE lines for {family}"));
                    }
                    if arg == "counter" && family.ends_with("_total") {
                        return Err(format!("counter family {family} ends in _total"));
                    }
                    if let Some(c) = current.as_mut() {
                        c.1 = arg.to_string();
                    }
                }
                "UNIT" => {
                    if arg.is_empty() || !family.ends_with(&format!("_{arg}")) {
                        return Err(format!("unit {arg:?} is not the suffix of {family}"));
                    }
                    out.units.insert(family.to_string(), arg.to_string());
                }
                _ => return Err(format!("unknown metadata line {line}")),
            }
            continue;
        }
        if line.starts_with('#') {
            return Err(format!("bad comment line {line:?}"));
        }
        let sample = parse_sample(line)?;
        let (family, kind) = current
            .clone()
            .ok_or_else(|| format!("sample before any metadata: {line}"))?;
        if !belongs(&sample.name, &family, &kind) {
            return Err(format!("sample {} is not of {kind} {family}", sample.name));
        }
        seen_samples_of_current = true;
        if kind == "counter" && (sample.value.is_nan() || sample.value < 0.0) {
            return Err(format!("negative or NaN counter: {line}"));
        }
        let key = format!("{}{:?}", sample.name, sample.labels);
        if !sample_keys.insert(key) {
            return Err(format!("sample repeated: {line}"));
        }
        if kind == "histogram" {
            if sample.name.ends_with("_bucket") {
                let le = sample
                    .labels
                    .get("le")
                    .ok_or_else(|| format!("bucket without le: {line}"))?;
                buckets
                    .entry(family.clone())
                    .or_default()
                    .push((le.clone(), sample.value));
            } else if sample.name.ends_with("_count") {
                counts.insert(family.clone(), sample.value);
            }
        }
        out.samples.push(sample);
    }
    for (family, kind) in &out.types {
        if kind != "histogram" {
            continue;
        }
        let b = buckets.get(family).ok_or(format!("{family}: no buckets"))?;
        let mut last = 0.0;
        for (_, v) in b {
            if *v < last {
                return Err(format!("{family}: buckets not cumulative"));
            }
            last = *v;
        }
        match b.last() {
            Some((le, v)) if le == "+Inf" && Some(v) == counts.get(family) => {}
            _ => return Err(format!("{family}: last bucket is not +Inf equal to _count")),
        }
    }
    Ok(out)
}

#[test]
fn the_parser_rejects_what_openmetrics_forbids() {
    let ok = "# TYPE a counter\n# HELP a x\na_total 1\n# TYPE b_seconds gauge\n# UNIT b_seconds seconds\nb_seconds{k=\"v\"} 2\n# EOF\n";
    let e = parse(ok).unwrap();
    assert_eq!(e.value("a_total", &[]), 1.0);
    assert_eq!(e.value("b_seconds", &[("k", "v")]), 2.0);
    for bad in [
        "# TYPE a counter\na_total 1\n",                    // no EOF
        "# TYPE a counter\na 1\n# EOF\n",                   // counter without _total
        "# TYPE a_total counter\na_total_total 1\n# EOF\n", // family ends in _total
        "# TYPE a gauge\n# UNIT a seconds\na 1\n# EOF\n",   // unit not the suffix
        "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# TYPE a gauge\na 2\n# EOF\n", // family twice
        "# TYPE a gauge\na{k=v} 1\n# EOF\n",                // unquoted label
        "# TYPE a gauge\na 1\na 2\n# EOF\n",                // repeated sample
        "# TYPE a gauge\na 1\n# EOF\nb 1\n",                // text after EOF
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 0\n# EOF\n",
    ] {
        assert!(parse(bad).is_err(), "accepted: {bad}");
    }
}
