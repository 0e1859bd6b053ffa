//! Creates a collection in `./grape-data` (or the directory given as the first argument), inserts
//! generated vectors, waits for the index and searches.

use std::time::Instant;

use grape::{
    CreateCollection, Database, Distance, PointStruct, SearchRequest, VectorParams, VectorsConfig,
    WithPayload,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "grape-data".to_string());
    let db = Database::open(&path)?;
    let name = "quickstart";
    if db.collection_exists(name)? {
        db.delete_collection(name)?;
    }
    db.create_collection(
        name,
        CreateCollection::new(VectorsConfig::Single(VectorParams::new(64, Distance::Cosine))),
    )?;
    let docs = db.collection(name)?;

    // Deterministic pseudo-random vectors (xorshift), so the example needs no extra crates.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let n = 20_000u64;
    let started = Instant::now();
    for start in (0..n).step_by(1000) {
        let batch = (start..start + 1000)
            .map(|id| {
                let v: Vec<f32> = (0..64).map(|_| next()).collect();
                PointStruct::new(id, v).with_payload(serde_json::json!({"group": id % 10})).map_err(Box::new)
            })
            .collect::<Result<Vec<_>, _>>()?;
        docs.upsert(batch)?;
    }
    println!("inserted {n} points in {:.2?} (durable)", started.elapsed());
    let started = Instant::now();
    docs.optimize_now()?;
    println!("indexed in {:.2?}: {:?}", started.elapsed(), docs.info()?.indexed_vectors_count);

    let query: Vec<f32> = (0..64).map(|_| next()).collect();
    let mut req = SearchRequest::new(query, 5);
    req.with_payload = WithPayload::Enable(true);
    for hit in docs.search(&req)? {
        println!("id={} score={:.4} payload={:?}", hit.id, hit.score, hit.payload);
    }
    db.close()?;
    Ok(())
}
