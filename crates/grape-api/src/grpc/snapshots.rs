//! `qdrant.Snapshots`: create, list and delete collection and full-storage snapshots, over the same
//! database calls as the REST endpoints. Download, upload and recovery have no gRPC form in Qdrant.

use std::time::Instant;

use grape::SnapshotDescription;
use grape_proto::qdrant as pb;
use grape_proto::qdrant::snapshots_server::Snapshots;
use tonic::{Request, Response, Status};

use super::{elapsed, status, Access, State};

type Reply<T> = Result<Response<T>, Status>;

/// A snapshot's description; its creation time is the file's UTC modification time, as the engine
/// reports it (`2025-01-31T12:00:00.123456789`).
fn description(d: SnapshotDescription) -> pb::SnapshotDescription {
    let creation_time = d
        .creation_time
        .as_deref()
        .and_then(|t| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f").ok())
        .map(|t| {
            let t = t.and_utc();
            prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
        });
    pb::SnapshotDescription {
        name: d.name,
        creation_time,
        size: i64::try_from(d.size).unwrap_or(i64::MAX),
        checksum: d.checksum,
    }
}

fn list_response(list: Vec<SnapshotDescription>, start: Instant) -> pb::ListSnapshotsResponse {
    pb::ListSnapshotsResponse {
        snapshot_descriptions: list.into_iter().map(description).collect(),
        time: elapsed(start),
    }
}

#[tonic::async_trait]
impl Snapshots for State {
    async fn create(&self, request: Request<pb::CreateSnapshotRequest>) -> Reply<pb::CreateSnapshotResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let name = request.into_inner().collection_name;
        let created =
            self.service.run(move |db| db.create_collection_snapshot(&name)).await.map_err(status)?;
        Ok(Response::new(pb::CreateSnapshotResponse {
            snapshot_description: Some(description(created)),
            time: elapsed(start),
        }))
    }

    async fn list(&self, request: Request<pb::ListSnapshotsRequest>) -> Reply<pb::ListSnapshotsResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let name = request.into_inner().collection_name;
        let list = self.service.run(move |db| db.list_collection_snapshots(&name)).await.map_err(status)?;
        Ok(Response::new(list_response(list, start)))
    }

    async fn delete(&self, request: Request<pb::DeleteSnapshotRequest>) -> Reply<pb::DeleteSnapshotResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        self.service
            .run(move |db| db.delete_collection_snapshot(&req.collection_name, &req.snapshot_name))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::DeleteSnapshotResponse { time: elapsed(start) }))
    }

    async fn create_full(
        &self,
        request: Request<pb::CreateFullSnapshotRequest>,
    ) -> Reply<pb::CreateSnapshotResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let created = self.service.run(|db| db.create_full_snapshot()).await.map_err(status)?;
        Ok(Response::new(pb::CreateSnapshotResponse {
            snapshot_description: Some(description(created)),
            time: elapsed(start),
        }))
    }

    async fn list_full(
        &self,
        request: Request<pb::ListFullSnapshotsRequest>,
    ) -> Reply<pb::ListSnapshotsResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let list = self.service.run(|db| db.list_full_snapshots()).await.map_err(status)?;
        Ok(Response::new(list_response(list, start)))
    }

    async fn delete_full(
        &self,
        request: Request<pb::DeleteFullSnapshotRequest>,
    ) -> Reply<pb::DeleteSnapshotResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let name = request.into_inner().snapshot_name;
        self.service.run(move |db| db.delete_full_snapshot(&name)).await.map_err(status)?;
        Ok(Response::new(pb::DeleteSnapshotResponse { time: elapsed(start) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_time_as_a_timestamp() {
        let d = SnapshotDescription {
            name: "c-1.snapshot".into(),
            creation_time: Some("2025-01-31T12:00:00.500000000".into()),
            size: 10,
            checksum: Some("ab".into()),
        };
        let out = description(d);
        assert_eq!(
            out.creation_time,
            Some(prost_types::Timestamp { seconds: 1_738_324_800, nanos: 500_000_000 })
        );
        assert_eq!(out.size, 10);
    }
}
