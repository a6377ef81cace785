//! CLIP's simple byte-level BPE tokenizer (OpenAI CLIP / open_clip `SimpleTokenizer`), as SAM3's
//! text encoder expects it: `[49406, ids..., 49407]` padded with 0 to the context length.
//!
//! The vocabulary is the standard `bpe_simple_vocab_16e6.txt.gz`. Text cleanup follows open_clip's
//! `lower` cleaner (`ftfy.fix_text`, HTML unescaping, whitespace collapse, lower case) with the
//! parts of ftfy that matter for prompts ported: curly quotes, Latin ligatures, full-width forms,
//! control characters, NFC. ftfy's mojibake repair is not ported.
//!
//! Any text is tokenized quickly: words are read only until the context is full, the merges of
//! one word take O(n log n) in its length (a heap of candidate pairs, not CLIP's rescans), and
//! only short words are cached.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::Read;
use std::path::Path;

use parking_lot::Mutex;
use regex::Regex;
use unicode_normalization::UnicodeNormalization;

/// Id of `<|startoftext|>`.
pub const START_OF_TEXT: i64 = 49406;
/// Id of `<|endoftext|>`.
pub const END_OF_TEXT: i64 = 49407;
/// SAM3's text context length.
pub const CONTEXT_LENGTH: usize = 32;

/// Merges in the vocabulary file used by CLIP (lines 1..=48894 after the header).
const MERGES: usize = 49152 - 256 - 2;
/// Words whose BPE result is remembered; the cache is emptied when it grows past this.
const CACHE_LIMIT: usize = 16_384;
/// Longest word (in bytes) whose BPE result is cached: real words are short, and a long one
/// would hold its length in memory per entry.
const MAX_CACHED_WORD_BYTES: usize = 64;
const PATTERN: &str =
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

/// Why the vocabulary could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The file could not be read or decompressed.
    #[error("cannot read CLIP vocabulary {path}: {message}")]
    Io { path: String, message: String },
    /// The file is not CLIP's BPE vocabulary.
    #[error("{path} is not CLIP's BPE vocabulary: {message}")]
    Format { path: String, message: String },
}

/// A loaded CLIP BPE tokenizer. Thread-safe; `encode` takes `&self`.
pub struct ClipTokenizer {
    /// Token string → id (a later duplicate wins, as in the Python dict).
    encoder: HashMap<String, u32>,
    /// (left id, right id) → (rank, id of the merged symbol).
    merges: HashMap<(u32, u32), (u32, u32)>,
    /// Id of each byte's unicode stand-in, without and with the `</w>` suffix.
    byte_ids: [u32; 256],
    byte_end_ids: [u32; 256],
    pattern: Regex,
    cache: Mutex<HashMap<String, Vec<u32>>>,
}

impl std::fmt::Debug for ClipTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipTokenizer")
            .field("vocab_size", &self.encoder.len())
            .finish_non_exhaustive()
    }
}

/// CLIP's reversible byte → printable character table (`bytes_to_unicode`), as `(byte, char)`
/// pairs in the order of the Python dict (printable bytes first), which is the vocabulary's order.
fn bytes_to_unicode() -> Vec<(u8, char)> {
    let mut pairs: Vec<(u8, char)> = (b'!'..=b'~')
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .map(|b| (b, char::from(b)))
        .collect();
    let mut n = 0u32;
    for b in 0..=255u8 {
        if !pairs.iter().any(|&(p, _)| p == b) {
            pairs.push((b, char::from_u32(256 + n).unwrap_or('\u{FFFD}')));
            n += 1;
        }
    }
    pairs
}

impl ClipTokenizer {
    /// Loads the gzip-compressed vocabulary (`bpe_simple_vocab_16e6.txt.gz`). Blocking.
    pub fn from_file(path: &Path) -> Result<ClipTokenizer, TokenizerError> {
        let shown = path.display().to_string();
        let io = |e: std::io::Error| TokenizerError::Io {
            path: shown.clone(),
            message: e.to_string(),
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::io::BufReader::new(file))
            .read_to_string(&mut text)
            .map_err(io)?;
        ClipTokenizer::from_merges_text(&text).map_err(|message| TokenizerError::Format {
            path: shown,
            message,
        })
    }

    /// Builds the tokenizer from the decompressed vocabulary text.
    pub fn from_merges_text(text: &str) -> Result<ClipTokenizer, String> {
        let lines: Vec<&str> = text.split('\n').skip(1).take(MERGES).collect();
        if lines.len() != MERGES {
            return Err(format!("expected {MERGES} merges, found {}", lines.len()));
        }
        let mut merge_pairs = Vec::with_capacity(MERGES);
        for (i, line) in lines.iter().enumerate() {
            let mut parts = line.split_whitespace();
            match (parts.next(), parts.next(), parts.next()) {
                (Some(a), Some(b), None) => merge_pairs.push((a, b)),
                _ => return Err(format!("merge line {} is not two symbols: {line:?}", i + 2)),
            }
        }
        let byte_chars = bytes_to_unicode();
        let mut vocab: Vec<String> = Vec::with_capacity(MERGES + 514);
        vocab.extend(byte_chars.iter().map(|(_, c)| c.to_string()));
        vocab.extend(byte_chars.iter().map(|(_, c)| format!("{c}</w>")));
        vocab.extend(merge_pairs.iter().map(|(a, b)| format!("{a}{b}")));
        vocab.push("<|startoftext|>".into());
        vocab.push("<|endoftext|>".into());
        let mut encoder = HashMap::with_capacity(vocab.len());
        for (id, token) in vocab.into_iter().enumerate() {
            encoder.insert(token, id as u32);
        }
        if encoder.get("<|startoftext|>").map(|&i| i as i64) != Some(START_OF_TEXT)
            || encoder.get("<|endoftext|>").map(|&i| i as i64) != Some(END_OF_TEXT)
        {
            return Err("special tokens are not at 49406/49407".into());
        }
        let mut merges = HashMap::with_capacity(MERGES);
        for (rank, (a, b)) in merge_pairs.iter().enumerate() {
            let (Some(&left), Some(&right), Some(&merged)) = (
                encoder.get(*a),
                encoder.get(*b),
                encoder.get(&format!("{a}{b}")),
            ) else {
                // A merge of symbols that never exist can never apply.
                continue;
            };
            merges.insert((left, right), (rank as u32, merged));
        }
        let mut byte_ids = [0u32; 256];
        let mut byte_end_ids = [0u32; 256];
        for &(b, c) in &byte_chars {
            byte_ids[b as usize] = encoder[&c.to_string()];
            byte_end_ids[b as usize] = encoder[&format!("{c}</w>")];
        }
        let pattern = Regex::new(PATTERN).map_err(|e| e.to_string())?;
        Ok(ClipTokenizer {
            encoder,
            merges,
            byte_ids,
            byte_end_ids,
            pattern,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Number of entries in the vocabulary (49408 for CLIP).
    pub fn vocab_size(&self) -> usize {
        self.encoder.len()
    }

    /// The BPE ids of `text` after cleanup, without start/end tokens.
    pub fn encode_ids(&self, text: &str) -> Vec<i64> {
        self.encode_ids_up_to(text, usize::MAX)
    }

    /// The first `max` BPE ids of `text` after cleanup: the words after those are not
    /// tokenized.
    pub fn encode_ids_up_to(&self, text: &str, max: usize) -> Vec<i64> {
        let text = clean(text);
        let mut ids = Vec::new();
        for m in self.pattern.find_iter(&text) {
            if ids.len() >= max {
                break;
            }
            let word = m.as_str();
            match word {
                "<|startoftext|>" => ids.push(START_OF_TEXT),
                "<|endoftext|>" => ids.push(END_OF_TEXT),
                _ => ids.extend(self.bpe(word).into_iter().map(i64::from)),
            }
        }
        ids.truncate(max);
        ids
    }

    /// Tokens for SAM3's language encoder: `[49406, ids..., 49407]` padded with 0 to
    /// [`CONTEXT_LENGTH`]; a longer sequence is truncated and its last id set to 49407
    /// (open_clip's behaviour).
    pub fn encode(&self, text: &str) -> Vec<i64> {
        self.encode_with_context(text, CONTEXT_LENGTH)
    }

    /// As [`ClipTokenizer::encode`] with another context length (at least 2). Only the ids
    /// that fit are computed.
    pub fn encode_with_context(&self, text: &str, context_length: usize) -> Vec<i64> {
        let context_length = context_length.max(2);
        let mut tokens = Vec::with_capacity(context_length);
        tokens.push(START_OF_TEXT);
        tokens.extend(self.encode_ids_up_to(text, context_length - 2));
        tokens.push(END_OF_TEXT);
        tokens.resize(context_length, 0);
        tokens
    }

    /// Byte-level BPE of one pre-tokenised word (the last symbol carries `</w>`); short words
    /// are cached.
    fn bpe(&self, word: &str) -> Vec<u32> {
        let cacheable = word.len() <= MAX_CACHED_WORD_BYTES;
        if cacheable {
            if let Some(ids) = self.cache.lock().get(word) {
                return ids.clone();
            }
        }
        let symbols = self.merge(word.as_bytes());
        if cacheable {
            let mut cache = self.cache.lock();
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(word.to_string(), symbols.clone());
        }
        symbols
    }

    /// The merges of one word's bytes. CLIP repeatedly takes the lowest-ranked adjacent pair and
    /// merges every occurrence of it left to right; here every candidate pair sits in a heap
    /// ordered by (rank, position) over a linked list of symbols, which merges in the same order
    /// because a pair made by a merge always ranks above the merge that made it (true of CLIP's
    /// vocabulary: a merge's parts are made by earlier merges). O(n log n) in the word's length.
    fn merge(&self, bytes: &[u8]) -> Vec<u32> {
        let n = bytes.len();
        if n == 0 {
            return Vec::new();
        }
        const NONE: usize = usize::MAX;
        let mut symbols: Vec<u32> = bytes
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if i + 1 == n {
                    self.byte_end_ids[b as usize]
                } else {
                    self.byte_ids[b as usize]
                }
            })
            .collect();
        let mut next: Vec<usize> = (1..=n).map(|i| if i < n { i } else { NONE }).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| i.checked_sub(1).unwrap_or(NONE)).collect();
        // (rank, left position, left symbol, right symbol), lowest first.
        let mut heap: BinaryHeap<Reverse<(u32, usize, u32, u32)>> = BinaryHeap::new();
        let candidate = |symbols: &[u32], left: usize, right: usize| {
            self.merges
                .get(&(symbols[left], symbols[right]))
                .map(|&(rank, _)| Reverse((rank, left, symbols[left], symbols[right])))
        };
        heap.extend((0..n - 1).filter_map(|i| candidate(&symbols, i, i + 1)));
        while let Some(Reverse((_, left, first, second))) = heap.pop() {
            let right = next[left];
            // Stale: the left symbol was merged away or changed, or its neighbour changed.
            if symbols[left] != first || right == NONE || symbols[right] != second {
                continue;
            }
            symbols[left] = self.merges[&(first, second)].1;
            next[left] = next[right];
            if next[right] != NONE {
                prev[next[right]] = left;
            }
            // `right` is gone: unlinked, and its symbol can no longer match a heap entry.
            symbols[right] = u32::MAX;
            if prev[left] != NONE {
                heap.extend(candidate(&symbols, prev[left], left));
            }
            if next[left] != NONE {
                heap.extend(candidate(&symbols, left, next[left]));
            }
        }
        let mut merged = Vec::new();
        let mut at = 0;
        while at != NONE {
            merged.push(symbols[at]);
            at = next[at];
        }
        merged
    }
}

/// open_clip's `lower` cleaner: ftfy (ported subset), HTML unescaping twice, whitespace collapse,
/// lower case.
pub fn clean(text: &str) -> String {
    let text = fix_text(text);
    let text = unescape_html(&unescape_html(&text, false), false);
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.to_lowercase()
}

/// The parts of `ftfy.fix_text` (6.x defaults) that matter for short prompts, in ftfy's order.
fn fix_text(text: &str) -> String {
    let mut text = text.to_string();
    // ftfy only unescapes HTML when the text has no '<' ("auto"), and only `&...;` entities.
    if !text.contains('<') {
        text = unescape_html(&text, true);
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            // fix_latin_ligatures
            'Ĳ' => out.push_str("IJ"),
            'ĳ' => out.push_str("ij"),
            'ŉ' => out.push_str("\u{2bc}n"),
            'Ǳ' => out.push_str("DZ"),
            'ǲ' => out.push_str("Dz"),
            'ǳ' => out.push_str("dz"),
            'Ǆ' => out.push_str("DŽ"),
            'ǅ' => out.push_str("Dž"),
            'ǆ' => out.push_str("dž"),
            'Ǉ' => out.push_str("LJ"),
            'ǈ' => out.push_str("Lj"),
            'ǉ' => out.push_str("lj"),
            'Ǌ' => out.push_str("NJ"),
            'ǋ' => out.push_str("Nj"),
            'ǌ' => out.push_str("nj"),
            'ﬀ' => out.push_str("ff"),
            'ﬁ' => out.push_str("fi"),
            'ﬂ' => out.push_str("fl"),
            'ﬃ' => out.push_str("ffi"),
            'ﬄ' => out.push_str("ffl"),
            'ﬅ' => out.push_str("ſt"),
            'ﬆ' => out.push_str("st"),
            // fix_character_width
            '\u{3000}' => out.push(' '),
            '\u{FF01}'..='\u{FFEF}' => out.extend(c.to_string().nfkc()),
            c => out.push(c),
        }
    }
    let mut fixed = String::with_capacity(out.len());
    for c in out.chars() {
        match c {
            // uncurl_quotes (after the width fix, as ftfy orders them)
            '\u{2BC}' | '\u{2018}'..='\u{201B}' => fixed.push('\''),
            '\u{201C}'..='\u{201F}' => fixed.push('"'),
            // remove_control_chars
            '\u{0}'..='\u{8}'
            | '\u{B}'
            | '\u{E}'..='\u{1F}'
            | '\u{7F}'
            | '\u{206A}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFC}' => {}
            c => fixed.push(c),
        }
    }
    fixed.nfc().collect()
}

/// Decodes HTML character references: numeric ones and the common named ones. With
/// `need_semicolon` false, the legacy names without `;` are decoded too (as `html.unescape`).
fn unescape_html(text: &str, need_semicolon: bool) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    const NAMED: [(&str, char, bool); 9] = [
        // name, character, may appear without ';' (HTML5 legacy)
        ("amp", '&', true),
        ("lt", '<', true),
        ("gt", '>', true),
        ("quot", '"', true),
        ("apos", '\'', false),
        ("nbsp", '\u{A0}', true),
        ("copy", '©', true),
        ("reg", '®', true),
        ("deg", '°', true),
    ];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos + 1..];
        let mut consumed = None;
        if let Some(num) = tail.strip_prefix('#') {
            let (digits, radix, prefix) = match num.strip_prefix(['x', 'X']) {
                Some(hex) => (hex, 16, 2),
                None => (num, 10, 1),
            };
            let len = digits
                .chars()
                .take_while(|c| c.is_digit(radix))
                .map(char::len_utf8)
                .sum::<usize>();
            let has_semicolon = digits[len..].starts_with(';');
            if len > 0 && (has_semicolon || !need_semicolon) {
                let value = u32::from_str_radix(&digits[..len], radix).ok();
                let c = value
                    .and_then(char::from_u32)
                    .filter(|&c| c != '\0')
                    .unwrap_or('\u{FFFD}');
                out.push(c);
                consumed = Some(prefix + len + usize::from(has_semicolon));
            }
        } else {
            for (name, c, legacy) in NAMED {
                if let Some(after) = tail.strip_prefix(name) {
                    let has_semicolon = after.starts_with(';');
                    if has_semicolon || (legacy && !need_semicolon) {
                        out.push(c);
                        consumed = Some(name.len() + usize::from(has_semicolon));
                        break;
                    }
                }
            }
        }
        match consumed {
            Some(n) => rest = &tail[n..],
            None => {
                out.push('&');
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::PathBuf;

    /// The vocabulary for tests: `SAMGEO_TOKENIZER_VOCAB`, else `../shared/data/tokenizer/...`
    /// next to the workspace. `None` (with a notice) when absent.
    pub(crate) fn test_vocab() -> Option<PathBuf> {
        let path = std::env::var_os("SAMGEO_TOKENIZER_VOCAB")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../shared/data/tokenizer/bpe_simple_vocab_16e6.txt.gz")
            });
        if path.is_file() {
            Some(path)
        } else {
            crate::test_skip::skip(
                "CLIP tokenizer tests",
                &format!(
                    "CLIP vocabulary {} not found (set SAMGEO_TOKENIZER_VOCAB; scripts/setup fetches it)",
                    path.display()
                ),
            );
            None
        }
    }

    #[test]
    fn bytes_to_unicode_matches_clip() {
        let pairs = bytes_to_unicode();
        let t: std::collections::HashMap<u8, char> = pairs.iter().copied().collect();
        assert_eq!(pairs[0], (b'!', '!'));
        assert_eq!(t[&b'a'], 'a');
        assert_eq!(t[&0], '\u{100}');
        assert_eq!(t[&b' '], '\u{120}');
        assert_eq!(t[&0xAD], '\u{143}');
        let mut sorted: Vec<char> = pairs.iter().map(|&(_, c)| c).collect();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 256);
    }

    #[test]
    fn cleans_like_open_clip() {
        assert_eq!(clean("  Red\t ROOF\n"), "red roof");
        assert_eq!(clean("fish &amp;amp; chips"), "fish & chips");
        assert_eq!(clean("tree\u{2019}s"), "tree's");
        assert_eq!(clean("\u{FF32}\u{FF25}\u{FF24}"), "red");
        assert_eq!(clean("cafe\u{301}"), "caf\u{e9}");
    }

    #[test]
    fn matches_reference_tokens() {
        let Some(vocab) = test_vocab() else {
            return;
        };
        let tokenizer = ClipTokenizer::from_file(&vocab).expect("vocabulary loads");
        assert_eq!(tokenizer.vocab_size(), 49408);
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/clip_tokens.json");
        let text = std::fs::read_to_string(&fixture).expect("fixture exists");
        let records: Vec<serde_json::Value> = serde_json::from_str(&text).expect("fixture is JSON");
        assert!(records.len() >= 25);
        let mut failures = Vec::new();
        for record in &records {
            let phrase = record["text"].as_str().expect("text");
            let expected: Vec<i64> = record["tokens"]
                .as_array()
                .expect("tokens")
                .iter()
                .map(|v| v.as_i64().expect("int"))
                .collect();
            let got = tokenizer.encode(phrase);
            if got != expected {
                failures.push(format!(
                    "{phrase:?}\n  expected {expected:?}\n  got      {got:?}"
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} phrases differ:\n{}",
            failures.len(),
            records.len(),
            failures.join("\n")
        );
    }

    /// CLIP's own merge loop (the reference `bpe`): rescans for the best pair and merges every
    /// occurrence left to right, quadratic in the word's length.
    fn reference_merge(t: &ClipTokenizer, bytes: &[u8]) -> Vec<u32> {
        let mut symbols: Vec<u32> = bytes
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if i + 1 == bytes.len() {
                    t.byte_end_ids[b as usize]
                } else {
                    t.byte_ids[b as usize]
                }
            })
            .collect();
        while symbols.len() > 1 {
            let best = symbols
                .windows(2)
                .filter_map(|p| t.merges.get(&(p[0], p[1])).map(|&(r, _)| (r, p[0], p[1])))
                .min();
            let Some((_, first, second)) = best else {
                break;
            };
            let merged = t.merges[&(first, second)].1;
            let mut next = Vec::with_capacity(symbols.len());
            let mut i = 0;
            while i < symbols.len() {
                if i + 1 < symbols.len() && symbols[i] == first && symbols[i + 1] == second {
                    next.push(merged);
                    i += 2;
                } else {
                    next.push(symbols[i]);
                    i += 1;
                }
            }
            symbols = next;
        }
        symbols
    }

    /// Letters from a fixed-seed generator, drawn from `alphabet`.
    fn pseudo_random_word(seed: u64, len: usize, alphabet: &[u8]) -> String {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                alphabet[(state >> 33) as usize % alphabet.len()] as char
            })
            .collect()
    }

    #[test]
    fn heap_merges_equal_clips_loop() {
        let Some(vocab) = test_vocab() else {
            return;
        };
        let t = ClipTokenizer::from_file(&vocab).expect("vocabulary loads");
        let mut words: Vec<String> = [
            "a",
            "aa",
            "aaa",
            "aaaa",
            "aaaaaaaaaaaaa",
            "building",
            "buildings",
            "roof",
            "reeeeed",
            "mississippi",
            "abababababab",
            "lollollollol",
            "caf\u{e9}",
            "\u{1f3e0}\u{1f3e0}",
        ]
        .iter()
        .map(|w| w.to_string())
        .collect();
        for (seed, len) in [(1, 17), (2, 64), (3, 200), (4, 1500)] {
            words.push(pseudo_random_word(seed, len, b"abcdefghijklmnopqrstuvwxyz"));
            words.push(pseudo_random_word(seed, len, b"aeinrst"));
            words.push(pseudo_random_word(seed, len, b"ab"));
        }
        for word in &words {
            assert_eq!(
                t.merge(word.as_bytes()),
                reference_merge(&t, word.as_bytes()),
                "{word:?}"
            );
        }
    }

    /// A 1 MB prompt and a single 100 KB word: only what fits the context is tokenized (and the
    /// long word is merged in O(n log n), not cached); the tokens are the reference's.
    #[test]
    fn huge_prompts_give_the_truncated_tokens() {
        let Some(vocab) = test_vocab() else {
            return;
        };
        let t = ClipTokenizer::from_file(&vocab).expect("vocabulary loads");
        let phrase = "a photo of the red roofs of buildings near a river, ";
        let huge = phrase.repeat(1024 * 1024 / phrase.len() + 1);
        assert!(huge.len() >= 1024 * 1024);
        // The first 30 ids come from the first words alone (3 phrases hold more than 30).
        let expected = t.encode(&phrase.repeat(3));
        assert_eq!(expected[CONTEXT_LENGTH - 1], END_OF_TEXT, "truncated");
        assert_eq!(t.encode(&huge), expected);

        let word = pseudo_random_word(7, 100 * 1024, b"abcdefghijklmnopqrstuvwxyz");
        let tokens = t.encode(&word);
        // The reference's merges of a 2 KB prefix give the same first ids: a merge depends only
        // on its neighbourhood, and 30 tokens end far before the prefix does.
        let reference = reference_merge(&t, &word.as_bytes()[..2048]);
        let mut expected = vec![START_OF_TEXT];
        expected.extend(
            reference[..CONTEXT_LENGTH - 2]
                .iter()
                .map(|&id| i64::from(id)),
        );
        expected.push(END_OF_TEXT);
        assert_eq!(tokens, expected);
        assert!(
            t.cache
                .lock()
                .keys()
                .all(|w| w.len() <= MAX_CACHED_WORD_BYTES),
            "long words are not cached"
        );
    }
}
