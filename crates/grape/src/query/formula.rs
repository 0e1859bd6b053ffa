//! Score boosting (Qdrant's `formula` query): the prefetched points re-scored by an expression over
//! their prefetch scores, payload values and filter conditions.
//!
//! Semantics, as Qdrant (and its local mode) define them:
//! - `$score` / `$score[i]` is the point's score in prefetch `i` (0 for `$score`); a point absent from
//!   that prefetch takes the default given under the same name in `defaults`, else 0.
//! - Any other string is a payload key. Its value must be one number (an array of one counts as that
//!   number); a missing key takes `defaults[key]`; anything else is an error, never a silent 0.
//! - A condition is 1 when the point satisfies it, else 0 (evaluated by the engine's filter).
//! - `mult` stops at the first factor equal to 0; `div` with a left side of 0 is 0 without looking at
//!   the right side, and by 0 is `by_zero_default` or an error.
//! - `datetime` / `datetime_key` are seconds since the epoch; `geo_distance` is metres (haversine).
//! - Decays of `x` around `target` (default 0) with `scale` (default 1, > 0) and `midpoint` (default
//!   0.5, in (0, 1)), the value at `|x - target| = scale`: linear `max(0, 1 - (1 - m) / s * |d|)`,
//!   exponential `exp(ln(m) / s * |d|)`, gaussian `exp(ln(m) / s² * d²)`.
//! - Arithmetic is in f64; a non-finite intermediate or final (as f32) value is an error.
//!
//! Points are ranked by the formula's score, best first; equal scores go by point id.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::filter::{leaf_values, parse_datetime, GeoPoint};
use crate::{
    Collection, Condition, Error, Filter, Payload, PointId, Result, ScoredPoint, ScrollRequest, WithPayload,
    WithVector,
};

/// `{"formula": <expression>, "defaults": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Formula {
    pub formula: Expression,
    #[serde(default)]
    pub defaults: serde_json::Map<String, Value>,
}

/// One node of a formula, in Qdrant's JSON shape (each kind is an object with one key, constants are
/// numbers and variables strings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum Expression {
    Constant(f64),
    Variable(String),
    GeoDistance { geo_distance: GeoDistance },
    Datetime { datetime: String },
    DatetimeKey { datetime_key: String },
    Mult { mult: Vec<Expression> },
    Sum { sum: Vec<Expression> },
    Neg { neg: Box<Expression> },
    Abs { abs: Box<Expression> },
    Div { div: DivParams },
    Sqrt { sqrt: Box<Expression> },
    Pow { pow: PowParams },
    Exp { exp: Box<Expression> },
    Log10 { log10: Box<Expression> },
    Ln { ln: Box<Expression> },
    LinDecay { lin_decay: DecayParams },
    ExpDecay { exp_decay: DecayParams },
    GaussDecay { gauss_decay: DecayParams },
    // Last: a condition object is recognised by its own keys.
    Condition(Box<Condition>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct GeoDistance {
    pub origin: GeoPoint,
    /// Payload key of the destination point.
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DivParams {
    pub left: Box<Expression>,
    pub right: Box<Expression>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_zero_default: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PowParams {
    pub base: Box<Expression>,
    pub exponent: Box<Expression>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DecayParams {
    pub x: Box<Expression>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Box<Expression>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub midpoint: Option<f64>,
}

const DEFAULT_DECAY_SCALE: f64 = 1.0;
const DEFAULT_DECAY_MIDPOINT: f64 = 0.5;

/// A variable: the score of a prefetch, or a payload key.
enum Variable<'a> {
    Score(usize),
    Payload(&'a str),
}

fn parse_variable(name: &str) -> Result<Variable<'_>> {
    let Some(rest) = name.strip_prefix("$score") else { return Ok(Variable::Payload(name)) };
    if rest.is_empty() {
        return Ok(Variable::Score(0));
    }
    rest.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse().ok())
        .map(Variable::Score)
        .ok_or_else(|| Error::bad_input(format!("Invalid score pattern: {name}")))
}

fn non_finite(expression: impl std::fmt::Display) -> Error {
    Error::bad_input(format!("The expression {expression} produced a non-finite number"))
}

fn wrong_type(key: &str, expected: &str, description: &str) -> Error {
    Error::bad_input(format!(
        "Expected {expected} value for {key} in the payload and/or in the formula defaults. Error: {description}"
    ))
}

impl Expression {
    /// Checks what does not depend on a point: variables are well formed, decay parameters in range,
    /// date-time constants parse, conditions are well formed.
    pub fn validate(&self) -> Result<()> {
        match self {
            Expression::Constant(x) if !x.is_finite() => Err(non_finite(x)),
            Expression::Constant(_) | Expression::DatetimeKey { .. } | Expression::GeoDistance { .. } => {
                Ok(())
            }
            Expression::Variable(name) => parse_variable(name).map(|_| ()),
            Expression::Datetime { datetime } => parse_datetime(datetime).map(|_| ()).ok_or_else(|| {
                Error::bad_input(format!("Expected datetime in supported format for {datetime}"))
            }),
            Expression::Mult { mult: items } | Expression::Sum { sum: items } => {
                items.iter().try_for_each(Expression::validate)
            }
            Expression::Neg { neg: e }
            | Expression::Abs { abs: e }
            | Expression::Sqrt { sqrt: e }
            | Expression::Exp { exp: e }
            | Expression::Log10 { log10: e }
            | Expression::Ln { ln: e } => e.validate(),
            Expression::Div { div } => {
                div.left.validate()?;
                div.right.validate()
            }
            Expression::Pow { pow } => {
                pow.base.validate()?;
                pow.exponent.validate()
            }
            Expression::LinDecay { lin_decay: d }
            | Expression::ExpDecay { exp_decay: d }
            | Expression::GaussDecay { gauss_decay: d } => {
                let midpoint = d.midpoint.unwrap_or(DEFAULT_DECAY_MIDPOINT);
                if !(midpoint > 0.0 && midpoint < 1.0) {
                    return Err(Error::bad_input(format!(
                        "Midpoint must be between 0 and 1, got {midpoint}"
                    )));
                }
                let scale = d.scale.unwrap_or(DEFAULT_DECAY_SCALE);
                if !(scale > 0.0 && scale.is_finite()) {
                    return Err(Error::bad_input(format!("Scale must be non-zero positive, got {scale}")));
                }
                d.x.validate()?;
                d.target.as_ref().map_or(Ok(()), |t| t.validate())
            }
            Expression::Condition(c) => {
                Filter { must: Some(vec![(**c).clone()]), ..Default::default() }.validate()
            }
        }
    }

    /// Every condition of the expression, depth first.
    fn conditions<'a>(&'a self, out: &mut Vec<&'a Condition>) {
        match self {
            Expression::Condition(c) => out.push(c),
            Expression::Mult { mult: items } | Expression::Sum { sum: items } => {
                items.iter().for_each(|e| e.conditions(out))
            }
            Expression::Neg { neg: e }
            | Expression::Abs { abs: e }
            | Expression::Sqrt { sqrt: e }
            | Expression::Exp { exp: e }
            | Expression::Log10 { log10: e }
            | Expression::Ln { ln: e } => e.conditions(out),
            Expression::Div { div } => {
                div.left.conditions(out);
                div.right.conditions(out);
            }
            Expression::Pow { pow } => {
                pow.base.conditions(out);
                pow.exponent.conditions(out);
            }
            Expression::LinDecay { lin_decay: d }
            | Expression::ExpDecay { exp_decay: d }
            | Expression::GaussDecay { gauss_decay: d } => {
                d.x.conditions(out);
                if let Some(t) = &d.target {
                    t.conditions(out);
                }
            }
            Expression::Constant(_)
            | Expression::Variable(_)
            | Expression::GeoDistance { .. }
            | Expression::Datetime { .. }
            | Expression::DatetimeKey { .. } => {}
        }
    }
}

/// What a formula reads about one point.
struct PointContext<'a> {
    id: PointId,
    payload: &'a Payload,
    /// Per prefetch, the scores of the points it returned.
    scores: &'a [HashMap<PointId, f32>],
    defaults: &'a serde_json::Map<String, Value>,
    /// Per condition of the formula (by address), the points satisfying it.
    conditions: &'a HashMap<*const Condition, HashSet<PointId>>,
}

impl PointContext<'_> {
    /// The one value at a payload key, else its default.
    fn value(&self, key: &str) -> Result<&Value> {
        let found = leaf_values(self.payload, key);
        let value = match found.as_slice() {
            [] => match self.defaults.get(key) {
                Some(Value::Array(a)) if a.len() == 1 => Some(&a[0]),
                Some(Value::Array(a)) if a.is_empty() => None,
                other => other,
            },
            [one] => Some(*one),
            // Several values are not one number (nor one geo point or date-time).
            _ => return Err(wrong_type(key, "number", "Value is not a number")),
        };
        value.ok_or_else(|| wrong_type(key, "number", "No value found in the payload nor in the defaults"))
    }

    fn number(&self, key: &str) -> Result<f64> {
        match self.value(key)? {
            Value::Number(n) => n.as_f64().ok_or_else(|| wrong_type(key, "number", "Value is not a number")),
            _ => Err(wrong_type(key, "number", "Value is not a number")),
        }
    }

    fn eval(&self, e: &Expression) -> Result<f64> {
        Ok(match e {
            Expression::Constant(x) => *x,
            Expression::Variable(name) => match parse_variable(name)? {
                Variable::Payload(key) => self.number(key)?,
                Variable::Score(i) => match self.scores.get(i).and_then(|s| s.get(&self.id)) {
                    Some(&s) => s as f64,
                    None => match self.defaults.get(name.as_str()) {
                        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
                        Some(_) => return Err(wrong_type(name, "number", "Value is not a number")),
                        None => 0.0,
                    },
                },
            },
            Expression::Condition(c) => {
                let holds =
                    self.conditions.get(&(&**c as *const Condition)).is_some_and(|s| s.contains(&self.id));
                if holds {
                    1.0
                } else {
                    0.0
                }
            }
            Expression::GeoDistance { geo_distance } => {
                let to = self.value(&geo_distance.to)?;
                let point = GeoPoint::from_value(to).ok_or_else(|| {
                    Error::bad_input(format!(
                        "Expected geo point for {} in the payload and/or in the formula defaults.",
                        geo_distance.to
                    ))
                })?;
                geo_distance.origin.distance_m(&point)
            }
            Expression::Datetime { datetime } => seconds(datetime).ok_or_else(|| {
                Error::bad_input(format!("Expected datetime in supported format for {datetime}"))
            })?,
            Expression::DatetimeKey { datetime_key } => {
                let value = self.value(datetime_key)?;
                value.as_str().and_then(seconds).ok_or_else(|| {
                    Error::bad_input(format!(
                        "Expected datetime for {datetime_key} in the payload and/or in the formula defaults."
                    ))
                })?
            }
            Expression::Mult { mult } => {
                let mut product = 1.0;
                for factor in mult {
                    let x = self.eval(factor)?;
                    if x == 0.0 {
                        return Ok(x);
                    }
                    product *= x;
                }
                product
            }
            Expression::Sum { sum } => {
                let mut total = 0.0;
                for term in sum {
                    total += self.eval(term)?;
                }
                total
            }
            Expression::Neg { neg } => -self.eval(neg)?,
            Expression::Abs { abs } => self.eval(abs)?.abs(),
            Expression::Div { div } => {
                let left = self.eval(&div.left)?;
                if left == 0.0 {
                    return Ok(left);
                }
                let right = self.eval(&div.right)?;
                if right == 0.0 {
                    return div.by_zero_default.ok_or_else(|| non_finite(format!("{left}/{right}")));
                }
                finite(left / right, || format!("{left}/{right}"))?
            }
            Expression::Sqrt { sqrt } => {
                let x = self.eval(sqrt)?;
                if x < 0.0 {
                    return Err(non_finite(format!("√{x}")));
                }
                x.sqrt()
            }
            Expression::Pow { pow } => {
                let (base, exponent) = (self.eval(&pow.base)?, self.eval(&pow.exponent)?);
                finite(base.powf(exponent), || format!("{base}^{exponent}"))?
            }
            Expression::Exp { exp } => {
                let x = self.eval(exp)?;
                finite(x.exp(), || format!("exp({x})"))?
            }
            Expression::Log10 { log10 } => {
                let x = self.eval(log10)?;
                if x <= 0.0 {
                    return Err(non_finite(format!("log10({x})")));
                }
                x.log10()
            }
            Expression::Ln { ln } => {
                let x = self.eval(ln)?;
                if x <= 0.0 {
                    return Err(non_finite(format!("ln({x})")));
                }
                x.ln()
            }
            Expression::LinDecay { lin_decay: d } => {
                let (diff, scale, midpoint) = self.decay(d)?;
                (1.0 - (1.0 - midpoint) / scale * diff.abs()).max(0.0)
            }
            Expression::ExpDecay { exp_decay: d } => {
                let (diff, scale, midpoint) = self.decay(d)?;
                (midpoint.ln() / scale * diff.abs()).exp()
            }
            Expression::GaussDecay { gauss_decay: d } => {
                let (diff, scale, midpoint) = self.decay(d)?;
                (midpoint.ln() / (scale * scale) * diff * diff).exp()
            }
        })
    }

    /// `x - target`, the scale and the midpoint of a decay.
    fn decay(&self, d: &DecayParams) -> Result<(f64, f64, f64)> {
        let x = self.eval(&d.x)?;
        let target = match &d.target {
            Some(t) => self.eval(t)?,
            None => 0.0,
        };
        Ok((x - target, d.scale.unwrap_or(DEFAULT_DECAY_SCALE), d.midpoint.unwrap_or(DEFAULT_DECAY_MIDPOINT)))
    }
}

fn finite(x: f64, expression: impl FnOnce() -> String) -> Result<f64> {
    if x.is_finite() {
        Ok(x)
    } else {
        Err(non_finite(expression()))
    }
}

/// Seconds since the epoch of a date-time string.
fn seconds(s: &str) -> Option<f64> {
    parse_datetime(s).map(|micros| micros as f64 / 1e6)
}

/// Points read per scroll page while evaluating conditions.
const PAGE: usize = 1024;

/// Re-scores the union of the prefetches' points with `formula` and returns the best `top`.
pub(super) fn rescore(
    c: &Collection,
    formula: &Formula,
    sources: &[Vec<ScoredPoint>],
    top: usize,
) -> Result<Vec<ScoredPoint>> {
    formula.formula.validate()?;
    let scores: Vec<HashMap<PointId, f32>> =
        sources.iter().map(|list| list.iter().map(|p| (p.id, p.score)).collect()).collect();
    let mut ids: Vec<PointId> = sources.iter().flatten().map(|p| p.id).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut conditions = Vec::new();
    formula.formula.conditions(&mut conditions);
    let mut satisfied: HashMap<*const Condition, HashSet<PointId>> = HashMap::new();
    for condition in conditions {
        satisfied.insert(condition, matching(c, condition, &ids)?);
    }
    let records = c.retrieve(&ids, &WithPayload::Enable(true), &WithVector::Enable(false))?;
    let empty = Payload::new();
    let mut scored = Vec::with_capacity(records.len());
    // A point deleted since its prefetch ran is left out.
    for record in &records {
        let context = PointContext {
            id: record.id,
            payload: record.payload.as_ref().unwrap_or(&empty),
            scores: &scores,
            defaults: &formula.defaults,
            conditions: &satisfied,
        };
        let score = context.eval(&formula.formula)?;
        let score32 = score as f32;
        if !score32.is_finite() {
            return Err(non_finite(format!("{score} as f32 = {score32}")));
        }
        scored.push(ScoredPoint {
            id: record.id,
            version: 0,
            score: score32,
            payload: None,
            vector: None,
            order_value: None,
        });
    }
    scored.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    scored.truncate(top);
    Ok(scored)
}

/// The points among `ids` that satisfy `condition` (the engine's filter, payload indexes included).
fn matching(c: &Collection, condition: &Condition, ids: &[PointId]) -> Result<HashSet<PointId>> {
    let filter = Filter {
        must: Some(vec![Condition::HasId { has_id: ids.to_vec() }, condition.clone()]),
        ..Default::default()
    };
    let mut req = ScrollRequest {
        offset: None,
        limit: PAGE,
        with_payload: WithPayload::Enable(false),
        with_vector: WithVector::Enable(false),
        filter: Some(filter),
    };
    let mut out = HashSet::new();
    loop {
        let page = c.scroll(&req)?;
        out.extend(page.points.iter().map(|r| r.id));
        match page.next_page_offset {
            Some(next) => req.offset = Some(next),
            None => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(formula: Value, payload: Value, scores: &[(u64, f32)]) -> Result<f64> {
        let f: Formula = serde_json::from_value(formula).unwrap();
        f.formula.validate()?;
        let payload = payload.as_object().cloned().unwrap_or_default();
        let scores: Vec<HashMap<PointId, f32>> =
            scores.iter().map(|&(id, s)| HashMap::from([(PointId::Num(id), s)])).collect();
        let conditions = HashMap::new();
        let context = PointContext {
            id: PointId::Num(1),
            payload: &payload,
            scores: &scores,
            defaults: &f.defaults,
            conditions: &conditions,
        };
        context.eval(&f.formula)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn arithmetic_and_variables() {
        let f = json!({"formula": {"sum": ["$score", {"mult": [2, "price"]}, {"neg": "$score[1]"}]}});
        // Prefetch 1 did not return point 1: its score is 0.
        assert!(close(eval(f, json!({"price": 3}), &[(1, 0.5), (2, 9.0)]).unwrap(), 0.5 + 6.0));
        let f = json!({"formula": {"div": {"left": "a", "right": "b", "by_zero_default": 7}}});
        assert!(close(eval(f.clone(), json!({"a": 1, "b": 0}), &[]).unwrap(), 7.0));
        assert!(close(eval(f, json!({"a": 0, "b": "not read"}), &[]).unwrap(), 0.0));
        let f = json!({"formula": {"div": {"left": 1, "right": 0}}});
        assert!(eval(f, json!({}), &[]).unwrap_err().to_string().contains("non-finite"));
        let f = json!({"formula": {"pow": {"base": 2, "exponent": {"sqrt": 9}}}});
        assert!(close(eval(f, json!({}), &[]).unwrap(), 8.0));
        let f = json!({"formula": {"sum": [{"ln": {"exp": 2}}, {"log10": 1000}, {"abs": -1.5}]}});
        assert!(close(eval(f, json!({}), &[]).unwrap(), 2.0 + 3.0 + 1.5));
        assert!(eval(json!({"formula": {"sqrt": -1}}), json!({}), &[]).is_err());
        assert!(eval(json!({"formula": {"ln": 0}}), json!({}), &[]).is_err());
        // `mult` stops at a zero factor, before a factor that would fail.
        assert!(close(eval(json!({"formula": {"mult": [0, "missing"]}}), json!({}), &[]).unwrap(), 0.0));
    }

    #[test]
    fn defaults_and_type_errors() {
        let f =
            json!({"formula": {"sum": ["price", "$score[2]"]}, "defaults": {"price": 4, "$score[2]": 0.25}});
        assert!(close(eval(f.clone(), json!({}), &[]).unwrap(), 4.25));
        // A value in the payload wins over the default; an array of one is that number.
        assert!(close(eval(f, json!({"price": [10]}), &[]).unwrap(), 10.25));
        let e = eval(json!({"formula": "price"}), json!({"price": "cheap"}), &[]).unwrap_err();
        assert!(e.to_string().contains("Expected number value for price"), "{e}");
        let e = eval(json!({"formula": "price"}), json!({}), &[]).unwrap_err();
        assert!(e.to_string().contains("in the payload and/or in the formula defaults"), "{e}");
        assert!(eval(json!({"formula": "flag"}), json!({"flag": true}), &[]).is_err());
        assert!(eval(json!({"formula": "$score[x]"}), json!({}), &[]).is_err());
        assert!(eval(json!({"formula": "$scores"}), json!({}), &[]).is_err());
    }

    #[test]
    fn decays_geo_and_datetimes() {
        // At |x - target| = scale every decay equals the midpoint.
        for kind in ["lin_decay", "exp_decay", "gauss_decay"] {
            let f = json!({"formula": {kind: {"x": "x", "target": 10, "scale": 5, "midpoint": 0.3}}});
            assert!(close(eval(f, json!({"x": 15}), &[]).unwrap(), 0.3), "{kind}");
            let f = json!({"formula": {kind: {"x": 0}}});
            assert!(close(eval(f, json!({}), &[]).unwrap(), 1.0), "{kind}");
        }
        let f = json!({"formula": {"lin_decay": {"x": 100, "scale": 1}}});
        assert!(close(eval(f, json!({}), &[]).unwrap(), 0.0));
        assert!(eval(json!({"formula": {"exp_decay": {"x": 1, "midpoint": 1.0}}}), json!({}), &[]).is_err());
        assert!(eval(json!({"formula": {"exp_decay": {"x": 1, "scale": 0}}}), json!({}), &[]).is_err());
        let f = json!({"formula": {"geo_distance": {"origin": {"lon": 0.0, "lat": 0.0}, "to": "loc"}}});
        let d = eval(f, json!({"loc": {"lon": 0.0, "lat": 1.0}}), &[]).unwrap();
        assert!((d - 111_195.0).abs() < 10.0, "{d}");
        let f = json!({"formula": {"sum": [{"datetime_key": "t"}, {"neg": {"datetime": "1970-01-01T00:00:10Z"}}]}});
        assert!(close(eval(f, json!({"t": "1970-01-02T00:00:00Z"}), &[]).unwrap(), 86_400.0 - 10.0));
        assert!(eval(json!({"formula": {"datetime": "yesterday"}}), json!({}), &[]).is_err());
    }

    #[test]
    fn json_shapes() {
        let f: Formula = serde_json::from_value(json!({
            "formula": {"mult": [{"key": "city", "match": {"value": "oslo"}}, {"has_vector": "dense"}, 1.5]},
        }))
        .unwrap();
        let Expression::Mult { mult } = &f.formula else { panic!("{f:?}") };
        assert!(matches!(&mult[0], Expression::Condition(c) if matches!(**c, Condition::Field(_))));
        assert!(matches!(&mult[1], Expression::Condition(c) if matches!(**c, Condition::HasVector { .. })));
        assert_eq!(mult[2], Expression::Constant(1.5));
        let mut found = Vec::new();
        f.formula.conditions(&mut found);
        assert_eq!(found.len(), 2);
        assert!(serde_json::from_value::<Formula>(json!({"formula": {"nope": 1}})).is_err());
    }
}
