//! A filter back to an expression, and the canonical form that printing and parsing again yields.

use std::fmt::Write;

use super::lexer::is_bare_key;
use crate::filter::{Bound, Condition, FieldCondition, GeoLineString, GeoPoint, Match, MatchValue, Range};
use crate::Filter;

/// What an expression is at its top, which decides where it needs parentheses.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// A condition, a function call or something in parentheses.
    Primary,
    Not,
    And,
    Or,
}

pub(super) fn print(f: &Filter) -> String {
    print_filter(f).0
}

fn print_filter(f: &Filter) -> (String, Kind) {
    let list = |v: &Option<Vec<Condition>>| v.as_deref().unwrap_or(&[]).to_vec();
    let mut parts: Vec<(String, Kind)> =
        list(&f.must).iter().map(|c| (print_cond(c), Kind::Primary)).collect();
    let should = list(&f.should);
    if !should.is_empty() {
        let kind = if should.len() == 1 { Kind::Primary } else { Kind::Or };
        parts.push((should.iter().map(print_cond).collect::<Vec<_>>().join(" OR "), kind));
    }
    parts.extend(list(&f.must_not).iter().map(|c| (format!("NOT {}", print_cond(c)), Kind::Not)));
    if let Some(m) = &f.min_should {
        let mut text = format!("min_should({}", m.min_count);
        for c in &m.conditions {
            let _ = write!(text, ", {}", print_cond(c));
        }
        text.push(')');
        parts.push((text, Kind::Primary));
    }
    match parts.len() {
        0 => ("()".into(), Kind::Primary),
        1 => parts.remove(0),
        _ => {
            let texts: Vec<String> =
                parts.into_iter().map(|(t, k)| if k == Kind::Or { format!("({t})") } else { t }).collect();
            (texts.join(" AND "), Kind::And)
        }
    }
}

/// One condition, parenthesised unless it is a primary (so it can follow `NOT` or join `AND` / `OR`).
fn print_cond(c: &Condition) -> String {
    match c {
        Condition::Field(f) => print_field(f),
        Condition::IsEmpty { is_empty } => format!("is_empty({})", key(&is_empty.key)),
        Condition::IsNull { is_null } => format!("is_null({})", key(&is_null.key)),
        Condition::HasId { has_id } => {
            let ids: Vec<String> = has_id
                .iter()
                .map(|id| match id {
                    crate::PointId::Num(n) => n.to_string(),
                    crate::PointId::Uuid(u) => format!("\"{u}\""),
                })
                .collect();
            format!("has_id({})", ids.join(", "))
        }
        Condition::HasVector { has_vector } => format!("has_vector({})", string(has_vector)),
        Condition::Nested { nested } => {
            format!("nested({}, {})", key(&nested.key), print_filter(&nested.filter).0)
        }
        Condition::Filter(f) => match print_filter(f) {
            (t, Kind::Primary) => t,
            (t, _) => format!("({t})"),
        },
    }
}

/// A field condition with exactly one part. With none (invalid) the output is `range(key)`, which does
/// not parse; several parts are joined with `AND`, which is the same filter only for single-valued
/// fields (the syntax has no form for one condition with several parts).
fn print_field(f: &FieldCondition) -> String {
    let k = key(&f.key);
    let mut parts = Vec::new();
    if let Some(m) = &f.r#match {
        parts.push(match m {
            Match::Value { value } => format!("{k} = {}", match_value(value)),
            Match::Any { any } => format!("{k} IN {}", value_list(any)),
            Match::Except { except } if except.len() == 1 => format!("{k} != {}", match_value(&except[0])),
            Match::Except { except } => format!("{k} NOT IN {}", value_list(except)),
            Match::Text { text } => format!("{k} MATCHES {}", string(text)),
            Match::TextAny { text_any } => format!("text_any({k}, {})", string(text_any)),
            Match::Phrase { phrase } => format!("phrase({k}, {})", string(phrase)),
        });
    }
    if let Some(r) = &f.range {
        parts.push(range(&k, "range", r));
    }
    if let Some(g) = &f.geo_radius {
        parts.push(format!("geo_radius({k}, {}, {}m)", point(&g.center), number(g.radius)));
    }
    if let Some(b) = &f.geo_bounding_box {
        parts.push(format!("geo_box({k}, {}, {})", point(&b.top_left), point(&b.bottom_right)));
    }
    if let Some(p) = &f.geo_polygon {
        let mut text = format!("geo_polygon({k}, {}", ring(&p.exterior));
        for hole in p.interiors.iter().flatten() {
            let _ = write!(text, ", {}", ring(hole));
        }
        text.push(')');
        parts.push(text);
    }
    if let Some(r) = &f.values_count {
        parts.push(range(&k, "values_count", r));
    }
    match parts.len() {
        0 => format!("range({k})"),
        1 => parts.remove(0),
        _ => format!("({})", parts.join(" AND ")),
    }
}

/// One bound as a comparison, `gte` + `lte` as `BETWEEN`, anything else in the function form.
fn range(k: &str, function: &str, r: &Range) -> String {
    let lhs = if function == "range" { k.to_string() } else { format!("{function}({k})") };
    let bounds: Vec<(&str, &Bound)> = [(">", &r.gt), (">=", &r.gte), ("<", &r.lt), ("<=", &r.lte)]
        .into_iter()
        .filter_map(|(op, b)| b.as_ref().map(|b| (op, b)))
        .collect();
    match (bounds.as_slice(), &r.gte, &r.lte) {
        ([(op, b)], _, _) => format!("{lhs} {op} {}", bound(b)),
        ([_, _], Some(lo), Some(hi)) => format!("{lhs} BETWEEN {} AND {}", bound(lo), bound(hi)),
        _ => {
            let mut text = format!("{function}({k}");
            for (op, b) in bounds {
                let _ = write!(text, ", {op} {}", bound(b));
            }
            text.push(')');
            text
        }
    }
}

fn bound(b: &Bound) -> String {
    match b {
        Bound::Number(x) => number(*x),
        Bound::Datetime(t) => string(&t.text),
    }
}

/// The shortest text that parses back to the same `f64` (non-finite values print as `NaN` / `inf`,
/// which do not parse; filters with them are invalid).
fn number(x: f64) -> String {
    format!("{x:?}")
}

fn point(p: &GeoPoint) -> String {
    format!("{}, {}", number(p.lat), number(p.lon))
}

fn ring(r: &GeoLineString) -> String {
    let points: Vec<String> = r.points.iter().map(|p| format!("({})", point(p))).collect();
    format!("[{}]", points.join(", "))
}

fn match_value(v: &MatchValue) -> String {
    match v {
        MatchValue::Bool(b) => b.to_string(),
        MatchValue::Integer(i) => i.to_string(),
        MatchValue::Keyword(s) => string(s),
    }
}

fn value_list(values: &[MatchValue]) -> String {
    format!("[{}]", values.iter().map(match_value).collect::<Vec<_>>().join(", "))
}

fn key(k: &str) -> String {
    if is_bare_key(k) {
        k.to_string()
    } else {
        format!("`{}`", k.replace('`', "``"))
    }
}

fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The canonical form of `f` under the expression mapping: what `parse(print(f))` returns.
pub(super) fn normalize(f: &Filter) -> Filter {
    let list = |v: &Option<Vec<Condition>>| v.iter().flatten().map(normalize_condition).collect::<Vec<_>>();
    let mut must = list(&f.must);
    let mut should = list(&f.should);
    let must_not = list(&f.must_not);
    let mut min_should = f.min_should.as_ref().map(|m| crate::filter::MinShould {
        conditions: m.conditions.iter().map(normalize_condition).collect(),
        min_count: m.min_count,
    });
    // A one-condition `should` is that condition, unless it is itself a pure `should`.
    if should.len() == 1 {
        match should.remove(0) {
            Condition::Filter(g) if is_only_should(&g) => should = g.should.unwrap_or_default(),
            c => must.push(c),
        }
    }
    // `(a OR b)` and `min_should(..)` among the conjuncts: the last ones fill free slots.
    if should.is_empty() {
        if let Some(i) = must.iter().rposition(|c| matches!(c, Condition::Filter(g) if is_only_should(g))) {
            if let Condition::Filter(g) = must.remove(i) {
                should = g.should.unwrap_or_default();
            }
        }
    }
    if min_should.is_none() {
        let only_min = |g: &Filter| {
            g.min_should.is_some() && g.must.is_none() && g.should.is_none() && g.must_not.is_none()
        };
        if let Some(i) = must.iter().rposition(|c| matches!(c, Condition::Filter(g) if only_min(g))) {
            if let Condition::Filter(g) = must.remove(i) {
                min_should = g.min_should;
            }
        }
    }
    let some = |v: Vec<Condition>| (!v.is_empty()).then_some(v);
    let out = Filter { must: some(must), should: some(should), must_not: some(must_not), min_should };
    // Parentheses around a whole filter add nothing.
    match out {
        Filter { must: Some(mut m), should: None, must_not: None, min_should: None }
            if m.len() == 1 && matches!(m[0], Condition::Filter(_)) =>
        {
            match m.remove(0) {
                Condition::Filter(g) => g,
                c => Filter { must: Some(vec![c]), ..Filter::default() },
            }
        }
        out => out,
    }
}

fn is_only_should(g: &Filter) -> bool {
    g.should.is_some() && g.must.is_none() && g.must_not.is_none() && g.min_should.is_none()
}

fn normalize_condition(c: &Condition) -> Condition {
    match c {
        Condition::Filter(g) => match normalize(g) {
            // A filter of one condition is that condition.
            Filter { must: Some(mut m), should: None, must_not: None, min_should: None } if m.len() == 1 => {
                m.remove(0)
            }
            g => Condition::Filter(g),
        },
        Condition::Nested { nested } => Condition::Nested {
            nested: crate::filter::Nested { key: nested.key.clone(), filter: normalize(&nested.filter) },
        },
        Condition::Field(f) => {
            let mut f = f.clone();
            if let Some(p) = &mut f.geo_polygon {
                p.interiors = p.interiors.take().filter(|holes| !holes.is_empty());
            }
            Condition::Field(f)
        }
        c => c.clone(),
    }
}
