//! Random filters over random payloads against an independent model of the clause semantics.
use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

/// A condition of the model: integer field `a` equals / is below a value, keyword field `k` is one
/// of some values, field `a` is missing.
#[derive(Debug, Clone)]
enum Leaf {
    AEq(i64),
    ALt(i64),
    KAny(Vec<String>),
    AMissing,
}

#[derive(Debug, Clone)]
enum Model {
    Leaf(Leaf),
    Clause { must: Vec<Model>, should: Vec<Model>, must_not: Vec<Model>, min: Option<(Vec<Model>, usize)> },
}

fn holds(m: &Model, a: Option<i64>, k: &str) -> bool {
    match m {
        Model::Leaf(Leaf::AEq(x)) => a == Some(*x),
        Model::Leaf(Leaf::ALt(x)) => a.is_some_and(|a| a < *x),
        Model::Leaf(Leaf::KAny(v)) => v.iter().any(|s| s == k),
        Model::Leaf(Leaf::AMissing) => a.is_none(),
        Model::Clause { must, should, must_not, min } => {
            must.iter().all(|c| holds(c, a, k))
                && (should.is_empty() || should.iter().any(|c| holds(c, a, k)))
                && !must_not.iter().any(|c| holds(c, a, k))
                && min.as_ref().is_none_or(|(cs, n)| cs.iter().filter(|c| holds(c, a, k)).count() >= *n)
        }
    }
}

fn to_json(m: &Model) -> Value {
    match m {
        Model::Leaf(Leaf::AEq(x)) => json!({"key": "a", "match": {"value": x}}),
        Model::Leaf(Leaf::ALt(x)) => json!({"key": "a", "range": {"lt": x}}),
        Model::Leaf(Leaf::KAny(v)) => json!({"key": "k", "match": {"any": v}}),
        Model::Leaf(Leaf::AMissing) => json!({"is_empty": {"key": "a"}}),
        Model::Clause { must, should, must_not, min } => {
            let list = |v: &Vec<Model>| Value::Array(v.iter().map(to_json).collect());
            let mut o = serde_json::Map::new();
            o.insert("must".into(), list(must));
            o.insert("should".into(), list(should));
            o.insert("must_not".into(), list(must_not));
            if let Some((cs, n)) = min {
                o.insert("min_should".into(), json!({"conditions": list(cs), "min_count": n}));
            }
            Value::Object(o)
        }
    }
}

fn leaf() -> impl Strategy<Value = Model> {
    prop_oneof![
        (0i64..5).prop_map(|x| Model::Leaf(Leaf::AEq(x))),
        (0i64..6).prop_map(|x| Model::Leaf(Leaf::ALt(x))),
        prop::collection::vec(prop::sample::select(vec!["x", "y", "z"]), 0..3)
            .prop_map(|v| Model::Leaf(Leaf::KAny(v.into_iter().map(String::from).collect()))),
        Just(Model::Leaf(Leaf::AMissing)),
    ]
}

fn model() -> impl Strategy<Value = Model> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        let list = prop::collection::vec(inner.clone(), 0..3);
        (list.clone(), list.clone(), list, prop::option::of((prop::collection::vec(inner, 1..4), 0usize..3)))
            .prop_map(|(must, should, must_not, min)| Model::Clause { must, should, must_not, min })
    })
}

struct P(Value);

impl PointView for P {
    fn id(&self) -> PointId {
        PointId::Num(0)
    }
    fn payload(&self) -> Option<&Payload> {
        self.0.as_object()
    }
    fn has_vector(&self, _: &str) -> bool {
        true
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_filters_match_the_model(m in model(), a in prop::option::of(0i64..5), k in prop::sample::select(vec!["x", "y", "z"])) {
        // The top level of a filter is a clause; wrap a bare leaf in `must`.
        let m = match m {
            Model::Leaf(_) => Model::Clause { must: vec![m], should: vec![], must_not: vec![], min: None },
            clause => clause,
        };
        let filter: Filter = serde_json::from_value(to_json(&m)).unwrap();
        let mut payload = json!({"k": k});
        if let Some(a) = a {
            payload["a"] = json!(a);
        }
        prop_assert_eq!(filter.check(&P(payload)), holds(&m, a, k));
    }
}
