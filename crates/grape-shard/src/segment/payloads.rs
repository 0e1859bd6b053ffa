//! Payload storage of a segment: parsed JSON objects while appendable, JSON text once sealed.

use grape_types::{Error, Payload, Result};

pub enum PayloadStore {
    /// Appendable segments: one optional parsed payload per offset.
    Mutable(Vec<Option<Payload>>),
    /// Sealed segments: JSON text per offset, `offsets[i]..offsets[i+1]` in `bytes` (empty = no payload).
    Frozen { offsets: Vec<u64>, bytes: Vec<u8> },
}

impl PayloadStore {
    pub fn get(&self, offset: u32) -> Result<Option<Payload>> {
        match self {
            PayloadStore::Mutable(v) => Ok(v.get(offset as usize).cloned().flatten()),
            PayloadStore::Frozen { .. } => match self.raw(offset) {
                None | Some([]) => Ok(None),
                Some(text) => serde_json::from_slice(text)
                    .map(Some)
                    .map_err(|e| Error::Corruption(format!("stored payload of offset {offset}: {e}"))),
            },
        }
    }

    /// Runs `f` on the payload of `offset` without copying it. Sealed storage decodes only the top-level
    /// `keys` (what a filter reads), skipping the rest of the JSON text.
    pub fn with_payload<R>(
        &self,
        offset: u32,
        keys: &[&str],
        f: impl FnOnce(Option<&Payload>) -> R,
    ) -> Result<R> {
        match self {
            PayloadStore::Mutable(v) => Ok(f(v.get(offset as usize).and_then(Option::as_ref))),
            PayloadStore::Frozen { .. } => match self.raw(offset) {
                None | Some([]) => Ok(f(None)),
                Some(text) => {
                    let payload = decode_selected(text, keys)
                        .map_err(|e| Error::Corruption(format!("stored payload of offset {offset}: {e}")))?;
                    Ok(f(Some(&payload)))
                }
            },
        }
    }

    /// JSON text of a payload (sealed storage only); `Some(&[])` means no payload.
    pub fn raw(&self, offset: u32) -> Option<&[u8]> {
        match self {
            PayloadStore::Mutable(_) => None,
            PayloadStore::Frozen { offsets, bytes } => {
                let i = offset as usize;
                let (start, end) = (*offsets.get(i)? as usize, *offsets.get(i + 1)? as usize);
                bytes.get(start..end)
            }
        }
    }

    /// Sets the payload of an offset (appendable storage only; offsets are filled in order).
    pub fn put(&mut self, offset: u32, payload: Option<Payload>) -> Result<()> {
        match self {
            PayloadStore::Mutable(v) => {
                let i = offset as usize;
                if i >= v.len() {
                    v.resize(i + 1, None);
                }
                v[i] = payload.filter(|p| !p.is_empty());
                Ok(())
            }
            PayloadStore::Frozen { .. } => Err(Error::Internal("payload write into a sealed segment".into())),
        }
    }

    pub fn ram_bytes(&self) -> usize {
        match self {
            // Parsed JSON has no cheap exact size; count its text size as an estimate.
            PayloadStore::Mutable(v) => {
                v.iter().map(|p| p.as_ref().map_or(0, |p| serde_json::to_vec(p).map_or(0, |b| b.len()))).sum()
            }
            PayloadStore::Frozen { offsets, bytes } => offsets.len() * 8 + bytes.len(),
        }
    }

    /// Encodes payloads of `offsets` (in order) as the body of a payload file.
    pub fn encode(&self, offsets: &[u32]) -> Result<Vec<u8>> {
        let mut index = Vec::with_capacity(offsets.len() + 1);
        let mut text = Vec::new();
        index.push(0u64);
        for &o in offsets {
            match self {
                PayloadStore::Mutable(v) => {
                    if let Some(Some(p)) = v.get(o as usize) {
                        serde_json::to_writer(&mut text, p)
                            .map_err(|e| Error::Internal(format!("payload encoding: {e}")))?;
                    }
                }
                PayloadStore::Frozen { .. } => text.extend_from_slice(self.raw(o).unwrap_or_default()),
            }
            index.push(text.len() as u64);
        }
        let mut body = Vec::with_capacity(8 + index.len() * 8 + text.len());
        body.extend_from_slice(&(offsets.len() as u64).to_le_bytes());
        for x in &index {
            body.extend_from_slice(&x.to_le_bytes());
        }
        body.extend_from_slice(&text);
        Ok(body)
    }

    /// Decodes a payload file body.
    pub fn decode(mut body: Vec<u8>) -> Result<PayloadStore> {
        let bad = || Error::Corruption("payload file: truncated offset table".into());
        let n = u64::from_le_bytes(body.get(0..8).ok_or_else(bad)?.try_into().map_err(|_| bad())?) as usize;
        let table_end = 8 + (n + 1) * 8;
        let table = body.get(8..table_end).ok_or_else(bad)?;
        let offsets: Vec<u64> =
            table.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default())).collect();
        body.drain(..table_end);
        if offsets.windows(2).any(|w| w[0] > w[1])
            || offsets.last().is_some_and(|&l| l as usize != body.len())
        {
            return Err(Error::Corruption("payload file: offset table does not match the data".into()));
        }
        Ok(PayloadStore::Frozen { offsets, bytes: body })
    }
}

/// Decodes the top-level `keys` of a JSON object; other values are skipped (checked, not kept).
fn decode_selected(text: &[u8], keys: &[&str]) -> serde_json::Result<Payload> {
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

    struct Select<'k>(&'k [&'k str]);

    impl<'de> DeserializeSeed<'de> for Select<'_> {
        type Value = Payload;

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Payload, D::Error> {
            d.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for Select<'_> {
        type Value = Payload;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Payload, A::Error> {
            let mut out = Payload::new();
            while let Some(key) = map.next_key::<String>()? {
                if self.0.contains(&key.as_str()) {
                    out.insert(key, map.next_value()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(out)
        }
    }

    let mut de = serde_json::Deserializer::from_slice(text);
    let payload = Select(keys).deserialize(&mut de)?;
    de.end()?;
    Ok(payload)
}
