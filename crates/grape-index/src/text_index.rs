//! The `text` payload index of a sealed segment: an inverted index token -> sorted offsets, built
//! with the index's [`Tokenizer`], and with `phrase_matching` the positioned token ids of every
//! stored text, so phrases are answered from the index alone.
//!
//! A text condition holds when one string value of the point matches (see `grape_types::text`).
//! Postings are per point, so for a point with several strings they answer "the tokens occur in the
//! point's texts", a superset; the answer is exact when no point of the segment has more than one
//! string at the key (`text`), always for `text_any`, and for `phrase` when positions are kept.

use std::collections::HashMap;
use std::sync::Arc;

use grape_types::filter::Match;
use grape_types::text::{TextMatch, Tokenizer};

use crate::payload_index::{intersect, union};

#[derive(Debug)]
pub struct TextIndex {
    tokenizer: Arc<Tokenizer>,
    /// Token -> its id (the index into `postings`).
    ids: HashMap<String, u32>,
    /// Sorted offsets of the points with the token, per token id.
    postings: Vec<Vec<u32>>,
    /// Whether a point has more than one string at the key.
    multi_valued: bool,
    /// With `phrase_matching`: per point, per string value, its (position, token id) list.
    documents: Option<HashMap<u32, Vec<Document>>>,
}

/// One stored string as (word position, token id) pairs.
type Document = Vec<(u32, u32)>;

impl TextIndex {
    /// Indexes the strings of every point (`(offset, strings)`, offsets in any order).
    pub fn build<'a>(tokenizer: Arc<Tokenizer>, points: impl Iterator<Item = (u32, Vec<&'a str>)>) -> Self {
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut postings: Vec<Vec<u32>> = Vec::new();
        let mut multi_valued = false;
        let mut documents = tokenizer.phrase_matching().then(HashMap::new);
        for (offset, texts) in points {
            multi_valued |= texts.len() > 1;
            let mut docs = Vec::with_capacity(texts.len());
            for text in texts {
                let mut doc = Vec::new();
                for (position, token) in tokenizer.document(text) {
                    let next = ids.len() as u32;
                    let id = *ids.entry(token).or_insert(next);
                    if id == next {
                        postings.push(Vec::new());
                    }
                    let list = &mut postings[id as usize];
                    if list.last() != Some(&offset) {
                        list.push(offset);
                    }
                    doc.push((position, id));
                }
                docs.push(doc);
            }
            if let Some(d) = documents.as_mut() {
                d.insert(offset, docs);
            }
        }
        for list in &mut postings {
            list.sort_unstable();
            list.dedup();
        }
        TextIndex { tokenizer, ids, postings, multi_valued, documents }
    }

    pub fn tokenizer(&self) -> &Arc<Tokenizer> {
        &self.tokenizer
    }

    fn how(m: &Match) -> Option<(TextMatch, &str)> {
        match m {
            Match::Text { text } => Some((TextMatch::All, text)),
            Match::TextAny { text_any } => Some((TextMatch::Any, text_any)),
            Match::Phrase { phrase } => Some((TextMatch::Phrase, phrase)),
            _ => None,
        }
    }

    /// Candidates for a text condition; `None` for other match kinds.
    pub fn lookup(&self, m: &Match) -> Option<Vec<u32>> {
        let (how, query) = Self::how(m)?;
        let tokens = self.tokenizer.query(query);
        if tokens.is_empty() {
            return Some(Vec::new());
        }
        let ids: Vec<Option<u32>> = tokens.iter().map(|t| self.ids.get(t).copied()).collect();
        let list = |id: u32| &self.postings[id as usize];
        Some(match how {
            TextMatch::Any => union(ids.iter().flatten().map(|&id| list(id).clone()).collect()),
            TextMatch::All | TextMatch::Phrase => {
                // A token no point has: nothing matches.
                let Some(known) = ids.iter().copied().collect::<Option<Vec<u32>>>() else {
                    return Some(Vec::new());
                };
                let mut lists: Vec<&Vec<u32>> = known.iter().map(|&id| list(id)).collect();
                lists.sort_by_key(|l| l.len());
                let mut found = lists[0].clone();
                for l in &lists[1..] {
                    found = intersect(&found, l);
                }
                match (how, &self.documents) {
                    (TextMatch::Phrase, Some(docs)) => {
                        found.retain(|o| {
                            docs.get(o).is_some_and(|values| values.iter().any(|d| phrase_at(d, &known)))
                        });
                        found
                    }
                    _ => found,
                }
            }
        })
    }

    /// Whether [`TextIndex::lookup`] of `m` is exactly the set of points passing it.
    pub fn is_exact(&self, m: &Match) -> bool {
        match Self::how(m) {
            Some((TextMatch::Any, _)) => true,
            Some((TextMatch::All, _)) => !self.multi_valued,
            Some((TextMatch::Phrase, _)) => self.documents.is_some(),
            None => false,
        }
    }

    pub fn ram_bytes(&self) -> usize {
        let vocabulary: usize = self.ids.keys().map(|k| k.len() + 32).sum();
        let postings: usize = self.postings.iter().map(|l| 24 + l.len() * 4).sum();
        let documents: usize = self
            .documents
            .iter()
            .flatten()
            .map(|(_, values)| 32 + values.iter().map(|d| 24 + d.len() * 8).sum::<usize>())
            .sum();
        vocabulary + postings + documents
    }
}

/// Whether the token ids `phrase` occur at consecutive positions of `doc`.
fn phrase_at(doc: &[(u32, u32)], phrase: &[u32]) -> bool {
    doc.iter()
        .filter(|(_, t)| *t == phrase[0])
        .any(|&(start, _)| phrase.iter().enumerate().all(|(i, q)| doc.contains(&(start + i as u32, *q))))
}

#[cfg(test)]
mod tests {
    use grape_types::text::TextIndexParams;
    use serde_json::json;

    use super::*;

    fn index(params: serde_json::Value, texts: &[&[&str]]) -> TextIndex {
        let params: TextIndexParams = serde_json::from_value(params).unwrap();
        let tokenizer = Arc::new(Tokenizer::new(&params).unwrap());
        TextIndex::build(tokenizer, texts.iter().enumerate().map(|(i, t)| (i as u32, t.to_vec())))
    }

    fn m(v: serde_json::Value) -> Match {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn text_any_and_phrase() {
        let idx = index(
            json!({"phrase_matching": true}),
            &[&["The quick brown fox"], &["brown quick"], &["a fox, quick!"], &[]],
        );
        assert_eq!(idx.lookup(&m(json!({"text": "QUICK fox"}))), Some(vec![0, 2]));
        assert_eq!(idx.lookup(&m(json!({"text": "quick zebra"}))), Some(vec![]));
        assert_eq!(idx.lookup(&m(json!({"text": "  "}))), Some(vec![]));
        assert_eq!(idx.lookup(&m(json!({"text_any": "zebra brown"}))), Some(vec![0, 1]));
        assert_eq!(idx.lookup(&m(json!({"phrase": "quick brown"}))), Some(vec![0]));
        assert_eq!(idx.lookup(&m(json!({"phrase": "brown quick"}))), Some(vec![1]));
        assert_eq!(idx.lookup(&m(json!({"value": "x"}))), None);
        assert!(idx.is_exact(&m(json!({"text": "a"}))) && idx.is_exact(&m(json!({"phrase": "a"}))));
    }

    #[test]
    fn exactness_follows_what_the_index_keeps() {
        let idx = index(json!({}), &[&["good cheap"], &["good", "cheap"]]);
        // Both points have both tokens, but only point 0 has them in one string: a superset, not exact.
        assert_eq!(idx.lookup(&m(json!({"text": "good cheap"}))), Some(vec![0, 1]));
        assert!(!idx.is_exact(&m(json!({"text": "good cheap"}))));
        assert!(idx.is_exact(&m(json!({"text_any": "good"}))));
        assert!(!idx.is_exact(&m(json!({"phrase": "good cheap"}))), "no positions without phrase_matching");
    }
}
