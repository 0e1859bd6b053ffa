//! Full-text matching (`match: {text}`, `{text_any}`, `{phrase}`): Qdrant's text index parameters and
//! the tokenizer they configure.
//!
//! A text condition compares tokens, never substrings. On a field with a declared `text` index, both
//! the stored value and the query are tokenized by that index's [`Tokenizer`]; on a field without one,
//! by [`Tokenizer::unindexed`] (the `word` tokenizer, lowercased), as Qdrant 1.19.1 does. Then:
//! - `text`: every query token is a token of the value; a query without tokens matches nothing;
//! - `text_any`: at least one query token is;
//! - `phrase`: the query tokens appear in the value consecutively and in order.
//!
//! Processing of one word: lowercase (default on), ASCII folding, stopword removal, stemming, then the
//! length limits (in characters). Tokenizers:
//! - `word`: splits at every character that is not alphanumeric;
//! - `whitespace`: splits at whitespace only (punctuation stays in the tokens);
//! - `prefix`: `word`, then a stored word is indexed with all its prefixes of `min_token_len`
//!   (default 1) to `max_token_len` characters, and a query word is cut to `max_token_len`
//!   characters, so a query word matches every stored word it starts; stopwords are not removed from
//!   queries;
//! - `multilingual` ("multilingual-lite"): splits at the word boundaries of Unicode's text
//!   segmentation (UAX #29), dropping the pieces without a letter or digit. Unlike Qdrant's
//!   dictionary-based segmentation of Chinese, Japanese and Thai, runs of those scripts are split as
//!   UAX #29 splits them (ideographs one by one), and no script-specific normalization is applied
//!   beyond lowercasing.
//!
//! Stopword lists are NLTK's (the `stop-words` crate); Qdrant's `japanese` list is not built.
//! Stemming is Snowball (the `rust-stemmers` crate) for every language Qdrant lists except `armenian`.
//! ASCII folding decomposes characters (NFKD), drops combining marks and spells out a few letters
//! that do not decompose (`ß`, `æ`, `ø`, `œ`, `ł`, `đ`, `þ`, `ð`, `ı`).

use std::collections::HashSet;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use unicode_segmentation::UnicodeSegmentation;

/// How a text is split into words.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenizerType {
    Prefix,
    Whitespace,
    #[default]
    Word,
    Multilingual,
}

/// The options of a `text` payload index (Qdrant's `TextIndexParams` without its `type`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextIndexParams {
    #[serde(default)]
    pub tokenizer: TokenizerType,
    #[serde(default)]
    pub min_token_len: Option<usize>,
    #[serde(default)]
    pub max_token_len: Option<usize>,
    #[serde(default)]
    pub lowercase: Option<bool>,
    #[serde(default)]
    pub ascii_folding: Option<bool>,
    #[serde(default)]
    pub phrase_matching: Option<bool>,
    #[serde(default)]
    pub stopwords: Option<Stopwords>,
    #[serde(default)]
    pub stemmer: Option<StemmingAlgorithm>,
    #[serde(default)]
    pub on_disk: Option<bool>,
    #[serde(default)]
    pub enable_hnsw: Option<bool>,
}

/// `stopwords`: one language, or languages and custom words together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Stopwords {
    Language(String),
    Set(StopwordsSet),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopwordsSet {
    #[serde(default)]
    pub languages: Option<Vec<String>>,
    #[serde(default)]
    pub custom: Option<Vec<String>>,
}

/// `stemmer`: `{"type": "snowball", "language": ..}` or `{"type": "none"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum StemmingAlgorithm {
    Snowball { language: String },
    None,
}

/// Qdrant's stopword language names and the NLTK lists they select (`None`: no list in Grape).
const STOPWORD_LANGUAGES: &[(&str, Option<&str>)] = &[
    ("arabic", Some("ar")),
    ("azerbaijani", Some("az")),
    ("basque", Some("eu")),
    ("bengali", Some("bn")),
    ("catalan", Some("ca")),
    ("chinese", Some("zh")),
    ("danish", Some("da")),
    ("dutch", Some("nl")),
    ("english", Some("en")),
    ("finnish", Some("fi")),
    ("french", Some("fr")),
    ("german", Some("de")),
    ("greek", Some("el")),
    ("hebrew", Some("he")),
    ("hinglish", Some("hinglish")),
    ("hungarian", Some("hu")),
    ("indonesian", Some("id")),
    ("italian", Some("it")),
    ("japanese", None),
    ("kazakh", Some("kk")),
    ("nepali", Some("ne")),
    ("norwegian", Some("no")),
    ("portuguese", Some("pt")),
    ("romanian", Some("ro")),
    ("russian", Some("ru")),
    ("slovene", Some("sl")),
    ("spanish", Some("es")),
    ("swedish", Some("sv")),
    ("tajik", Some("tg")),
    ("turkish", Some("tr")),
];

fn stopword_list(language: &str) -> Result<&'static [&'static str], String> {
    match STOPWORD_LANGUAGES.iter().find(|(name, _)| *name == language) {
        Some((_, Some(code))) => {
            stop_words::lookup(code).ok_or_else(|| format!("stopwords: no list for {language:?}"))
        }
        Some((_, None)) => Err(format!("stopwords: the {language:?} list is not built in Grape")),
        None => {
            let names: Vec<&str> = STOPWORD_LANGUAGES.iter().map(|(n, _)| *n).collect();
            Err(format!("stopwords: unknown language {language:?}; expected one of {}", names.join(", ")))
        }
    }
}

fn snowball(language: &str) -> Result<rust_stemmers::Algorithm, String> {
    use rust_stemmers::Algorithm as A;
    Ok(match language {
        "arabic" => A::Arabic,
        "danish" => A::Danish,
        "dutch" => A::Dutch,
        "english" => A::English,
        "finnish" => A::Finnish,
        "french" => A::French,
        "german" => A::German,
        "greek" => A::Greek,
        "hungarian" => A::Hungarian,
        "italian" => A::Italian,
        "norwegian" => A::Norwegian,
        "portuguese" => A::Portuguese,
        "romanian" => A::Romanian,
        "russian" => A::Russian,
        "spanish" => A::Spanish,
        "swedish" => A::Swedish,
        "tamil" => A::Tamil,
        "turkish" => A::Turkish,
        "armenian" => return Err("stemmer: the armenian Snowball stemmer is not built in Grape".into()),
        other => return Err(format!("stemmer: unknown Snowball language {other:?}")),
    })
}

/// What a text condition asks of the query's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextMatch {
    /// `text`: all of them.
    All,
    /// `text_any`: at least one.
    Any,
    /// `phrase`: all, adjacent and in order.
    Phrase,
}

/// A configured tokenizer: turns stored texts into positioned tokens and queries into tokens.
pub struct Tokenizer {
    kind: TokenizerType,
    lowercase: bool,
    ascii_folding: bool,
    min_len: Option<usize>,
    max_len: Option<usize>,
    stopwords: HashSet<String>,
    stemmer: Option<rust_stemmers::Stemmer>,
    phrase_matching: bool,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("kind", &self.kind)
            .field("lowercase", &self.lowercase)
            .field("ascii_folding", &self.ascii_folding)
            .field("min_len", &self.min_len)
            .field("max_len", &self.max_len)
            .field("stopwords", &self.stopwords.len())
            .field("stemmer", &self.stemmer.is_some())
            .finish()
    }
}

/// One token of a stored text and the position of the word it comes from.
pub type Positioned = (u32, String);

impl Tokenizer {
    /// The tokenizer of `params`; an error names the option Grape cannot honour.
    pub fn new(params: &TextIndexParams) -> Result<Tokenizer, String> {
        let lowercase = params.lowercase.unwrap_or(true);
        if let (Some(min), Some(max)) = (params.min_token_len, params.max_token_len) {
            if min > max {
                return Err(format!("min_token_len ({min}) is greater than max_token_len ({max})"));
            }
        }
        if params.max_token_len == Some(0) {
            return Err("max_token_len must be at least 1".into());
        }
        let mut words: Vec<&str> = Vec::new();
        match &params.stopwords {
            None => {}
            Some(Stopwords::Language(l)) => words.extend(stopword_list(l)?),
            Some(Stopwords::Set(set)) => {
                for l in set.languages.iter().flatten() {
                    words.extend(stopword_list(l)?);
                }
                words.extend(set.custom.iter().flatten().map(String::as_str));
            }
        }
        let stopwords = words.into_iter().map(|w| if lowercase { w.to_lowercase() } else { w.to_string() });
        let stemmer = match &params.stemmer {
            None | Some(StemmingAlgorithm::None) => None,
            Some(StemmingAlgorithm::Snowball { language }) => {
                Some(rust_stemmers::Stemmer::create(snowball(language)?))
            }
        };
        Ok(Tokenizer {
            kind: params.tokenizer,
            lowercase,
            ascii_folding: params.ascii_folding.unwrap_or(false),
            min_len: params.min_token_len,
            max_len: params.max_token_len,
            stopwords: stopwords.collect(),
            stemmer,
            phrase_matching: params.phrase_matching.unwrap_or(false),
        })
    }

    /// The default tokenizer: `word`, lowercased, nothing else.
    pub fn word() -> Tokenizer {
        Tokenizer {
            kind: TokenizerType::Word,
            lowercase: true,
            ascii_folding: false,
            min_len: None,
            max_len: None,
            stopwords: HashSet::new(),
            stemmer: None,
            phrase_matching: false,
        }
    }

    /// How a text condition tokenizes a field without a text index: [`Tokenizer::word`].
    pub fn unindexed() -> &'static Tokenizer {
        static UNINDEXED: LazyLock<Tokenizer> = LazyLock::new(Tokenizer::word);
        &UNINDEXED
    }

    /// Whether an index with this tokenizer records positions (`phrase_matching`).
    pub fn phrase_matching(&self) -> bool {
        self.phrase_matching
    }

    fn words<'a>(&self, text: &'a str) -> Box<dyn Iterator<Item = &'a str> + 'a> {
        match self.kind {
            TokenizerType::Word | TokenizerType::Prefix => {
                Box::new(text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()))
            }
            TokenizerType::Whitespace => Box::new(text.split_whitespace()),
            TokenizerType::Multilingual => {
                Box::new(text.split_word_bounds().filter(|w| w.chars().any(char::is_alphanumeric)))
            }
        }
    }

    /// Lowercasing, folding, stopwords (when `drop_stopwords`) and stemming of one word.
    fn normalize(&self, word: &str, drop_stopwords: bool) -> Option<String> {
        let mut w = if self.lowercase { word.to_lowercase() } else { word.to_string() };
        if self.ascii_folding {
            w = fold_to_ascii(&w);
        }
        if drop_stopwords && self.stopwords.contains(&w) {
            return None;
        }
        if let Some(s) = &self.stemmer {
            w = s.stem(&w).into_owned();
        }
        (!w.is_empty()).then_some(w)
    }

    fn long_enough(&self, token: &str) -> bool {
        self.min_len.is_none_or(|min| token.chars().count() >= min)
    }

    fn short_enough(&self, token: &str) -> bool {
        self.max_len.is_none_or(|max| token.chars().count() <= max)
    }

    /// The tokens of a stored text, each with the position of its word (positions count the words
    /// kept, so a removed stopword leaves no gap). The prefix tokenizer gives every prefix of a word
    /// the word's position.
    pub fn document(&self, text: &str) -> Vec<Positioned> {
        let mut out = Vec::new();
        let mut position = 0u32;
        for word in self.words(text) {
            let Some(w) = self.normalize(word, true) else { continue };
            let before = out.len();
            if self.kind == TokenizerType::Prefix {
                let chars = w.chars().count();
                let from = self.min_len.unwrap_or(1).max(1);
                let to = self.max_len.unwrap_or(usize::MAX).min(chars);
                for n in from..=to {
                    out.push((position, w.chars().take(n).collect()));
                }
                if chars < from && self.long_enough(&w) {
                    out.push((position, w));
                }
            } else if self.long_enough(&w) && self.short_enough(&w) {
                out.push((position, w));
            }
            if out.len() > before {
                position += 1;
            }
        }
        out
    }

    /// The tokens of a query, in order.
    pub fn query(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for word in self.words(text) {
            if self.kind == TokenizerType::Prefix {
                let Some(w) = self.normalize(word, false) else { continue };
                let w: String = match self.max_len {
                    Some(max) => w.chars().take(max).collect(),
                    None => w,
                };
                if self.long_enough(&w) {
                    out.push(w);
                }
            } else if let Some(w) = self.normalize(word, true) {
                if self.long_enough(&w) && self.short_enough(&w) {
                    out.push(w);
                }
            }
        }
        out
    }

    /// Whether the stored text `value` matches `query` by `how`.
    pub fn matches(&self, how: TextMatch, query: &str, value: &str) -> bool {
        let query = self.query(query);
        if query.is_empty() {
            return false;
        }
        let doc = self.document(value);
        tokens_match(how, &query, &doc)
    }
}

/// Whether positioned document tokens match query tokens (already tokenized, not empty).
pub fn tokens_match(how: TextMatch, query: &[String], doc: &[Positioned]) -> bool {
    let has = |t: &String| doc.iter().any(|(_, d)| d == t);
    match how {
        TextMatch::All => query.iter().all(has),
        TextMatch::Any => query.iter().any(has),
        TextMatch::Phrase => {
            let at: HashSet<(u32, &str)> = doc.iter().map(|(p, t)| (*p, t.as_str())).collect();
            doc.iter().filter(|(_, t)| *t == query[0]).any(|(start, _)| {
                query.iter().enumerate().all(|(i, q)| at.contains(&(start + i as u32, q.as_str())))
            })
        }
    }
}

/// ASCII folding: compatibility decomposition without combining marks, plus the letters that do not
/// decompose.
fn fold_to_ascii(s: &str) -> String {
    use unicode_normalization::char::is_combining_mark;
    use unicode_normalization::UnicodeNormalization;
    let mut out = String::with_capacity(s.len());
    for c in s.nfkd().filter(|c| !is_combining_mark(*c)) {
        match c {
            'ß' => out.push_str("ss"),
            'æ' => out.push_str("ae"),
            'Æ' => out.push_str("AE"),
            'ø' => out.push('o'),
            'Ø' => out.push('O'),
            'œ' => out.push_str("oe"),
            'Œ' => out.push_str("OE"),
            'ł' => out.push('l'),
            'Ł' => out.push('L'),
            'đ' | 'ð' => out.push('d'),
            'Đ' | 'Ð' => out.push('D'),
            'þ' => out.push_str("th"),
            'Þ' => out.push_str("TH"),
            'ı' => out.push('i'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tokenizer(v: serde_json::Value) -> Tokenizer {
        Tokenizer::new(&serde_json::from_value(v).unwrap()).unwrap()
    }

    fn words(doc: Vec<Positioned>) -> Vec<String> {
        doc.into_iter().map(|(_, t)| t).collect()
    }

    #[test]
    fn word_whitespace_and_multilingual() {
        let t = Tokenizer::unindexed();
        assert_eq!(words(t.document("Hello, World! Привет_мир")), ["hello", "world", "привет", "мир"]);
        assert!(t.matches(TextMatch::All, "WORLD hello", "Hello, World!"));
        assert!(!t.matches(TextMatch::All, "wor", "Hello, World!"), "tokens, not substrings");
        assert!(!t.matches(TextMatch::All, "...", "Hello"), "a query without tokens matches nothing");
        assert!(t.matches(TextMatch::Any, "nope world", "Hello, World!"));
        assert!(t.matches(TextMatch::Phrase, "hello world", "Hello, World!"));
        assert!(!t.matches(TextMatch::Phrase, "world hello", "Hello, World!"));
        let ws = tokenizer(json!({"tokenizer": "whitespace", "lowercase": false}));
        assert_eq!(words(ws.document("Hello, World!")), ["Hello,", "World!"]);
        let ml = tokenizer(json!({"tokenizer": "multilingual"}));
        assert_eq!(words(ml.document("What's up? 東京")), ["what's", "up", "東", "京"]);
    }

    #[test]
    fn prefix_lengths_stopwords_and_stemming() {
        let p = tokenizer(json!({"tokenizer": "prefix", "min_token_len": 2, "max_token_len": 4}));
        assert_eq!(words(p.document("Hello a")), ["he", "hel", "hell"]);
        assert_eq!(p.query("helloooo"), ["hell"]);
        assert!(p.matches(TextMatch::All, "hel", "hello"));
        assert!(!p.matches(TextMatch::All, "help", "hello"));
        let s = tokenizer(json!({"stopwords": {"languages": ["english"], "custom": ["Quick"]}}));
        assert_eq!(words(s.document("The quick brown fox")), ["brown", "fox"]);
        // A removed stopword leaves no gap in positions.
        assert!(s.matches(TextMatch::Phrase, "brown the fox", "brown and the fox"));
        let st = tokenizer(json!({"stemmer": {"type": "snowball", "language": "english"}}));
        assert!(st.matches(TextMatch::All, "running", "he runs"));
        let len = tokenizer(json!({"min_token_len": 3, "max_token_len": 5}));
        assert_eq!(words(len.document("a abc abcdef")), ["abc"]);
        let fold = tokenizer(json!({"ascii_folding": true}));
        assert_eq!(words(fold.document("Ação Straße")), ["acao", "strasse"]);
    }

    #[test]
    fn bad_params_name_the_option() {
        let err = |v: serde_json::Value| match serde_json::from_value::<TextIndexParams>(v.clone()) {
            Err(e) => e.to_string(),
            Ok(p) => Tokenizer::new(&p).unwrap_err(),
        };
        assert!(err(json!({"tokenizer": "nope"})).contains("unknown variant"));
        assert!(err(json!({"stopwords": "klingon"})).contains("unknown language"));
        assert!(err(json!({"stopwords": "japanese"})).contains("not built"));
        assert!(err(json!({"stemmer": {"type": "snowball", "language": "armenian"}})).contains("not built"));
        assert!(err(json!({"min_token_len": 5, "max_token_len": 2})).contains("min_token_len"));
        assert!(err(json!({"is_tenant": true})).contains("unknown field"));
    }
}
