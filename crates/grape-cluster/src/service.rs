//! The internal service: receives the Raft RPCs of every group and the requests of other nodes.

use std::sync::Weak;

use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, VoteRequest};
use tonic::{Request, Response, Status};

use crate::beats::{Beat, BEAT};
use crate::node::NodeInner;
use crate::pb::internal_server::{Internal, InternalServer};
use crate::pb::Envelope;
use crate::reads::{error_kind, ShardRead};
use crate::transport::{decode, encode, RemoteFailure, RemoteResult, APPEND, SNAPSHOT, VOTE};
use crate::types::{MetaCommand, MetaTc, NodeId, PeerNode, ShardTc, ShardWrite, META_GROUP};

struct Service {
    /// Weak: a stopped node answers nothing, even on connections still open.
    node: Weak<NodeInner>,
}

pub(crate) async fn serve(
    node: Weak<NodeInner>,
    listener: tokio::net::TcpListener,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut stop = stop;
    let stopped = async move {
        let _ = stop.wait_for(|&s| s).await;
    };
    let svc = InternalServer::new(Service { node })
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    if let Err(e) = tonic::transport::Server::builder()
        .add_service(svc)
        .serve_with_incoming_shutdown(incoming, stopped)
        .await
    {
        tracing::error!("internal service stopped: {e}");
    }
}

#[tonic::async_trait]
impl Internal for Service {
    async fn call(&self, request: Request<Envelope>) -> Result<Response<Envelope>, Status> {
        let env = request.into_inner();
        let node = &self.node.upgrade().ok_or_else(|| Status::unavailable("node stopped"))?;
        let group = env.group;
        let payload = match (env.kind.as_str(), group) {
            (APPEND, META_GROUP) => {
                let r: AppendEntriesRequest<MetaTc> = decode(&env.payload)?;
                encode(&node.meta.append_entries(r).await)?
            }
            (VOTE, META_GROUP) => {
                let r: VoteRequest<NodeId> = decode(&env.payload)?;
                encode(&node.meta.vote(r).await)?
            }
            (SNAPSHOT, META_GROUP) => {
                let r: InstallSnapshotRequest<MetaTc> = decode(&env.payload)?;
                encode(&node.meta.install_snapshot(r).await)?
            }
            (APPEND | VOTE | SNAPSHOT, _) => {
                let g = node
                    .group_soon(group, node.group_creation_wait())
                    .await
                    .ok_or_else(|| Status::not_found(format!("group {group} is not held here")))?;
                match env.kind.as_str() {
                    APPEND => {
                        let r: AppendEntriesRequest<ShardTc> = decode(&env.payload)?;
                        let answer = g.raft.append_entries(r).await;
                        if answer.as_ref().is_ok_and(|a| !matches!(a, AppendEntriesResponse::HigherVote(_))) {
                            // Accepted from the group's current leader: as good as a beat.
                            node.leader_heard(group);
                        }
                        encode(&answer)?
                    }
                    VOTE => {
                        let r: VoteRequest<NodeId> = decode(&env.payload)?;
                        encode(&g.raft.vote(r).await)?
                    }
                    _ => {
                        let r: InstallSnapshotRequest<ShardTc> = decode(&env.payload)?;
                        encode(&g.raft.install_snapshot(r).await)?
                    }
                }
            }
            (BEAT, _) => {
                let beat: Beat = decode(&env.payload)?;
                encode(&RemoteResult::Ok(node.beat_received(beat)))?
            }
            ("meta_write", _) => {
                let cmd: MetaCommand = decode(&env.payload)?;
                encode(&node.meta_write_here(cmd).await)?
            }
            ("join", _) => {
                let (id, peer): (NodeId, PeerNode) = decode(&env.payload)?;
                encode(&node.handle_join(id, peer).await)?
            }
            ("shard_write", _) => {
                let write: ShardWrite = decode(&env.payload)?;
                encode(&node.shard_write_here(group, write).await)?
            }
            ("group_members", _) => encode(&node.committed_members(group))?,
            ("shard_read", _) => {
                let body: Vec<u8> = decode(&env.payload)?;
                encode(&read_here(node, group, &body).await)?
            }
            ("shard_read_leader", _) => {
                let body: Vec<u8> = decode(&env.payload)?;
                encode(&read_at_leader(node, group, &body).await)?
            }
            (kind, _) => return Err(Status::invalid_argument(format!("unknown message kind {kind:?}"))),
        };
        Ok(Response::new(Envelope { kind: env.kind, group, payload }))
    }
}

async fn read_at_leader(node: &NodeInner, group: u64, body: &[u8]) -> RemoteResult<Vec<u8>> {
    let read: ShardRead =
        serde_json::from_slice(body).map_err(|e| RemoteFailure::Failed("bad_input".into(), e.to_string()))?;
    let answer = node.shard_read_leader(group, read).await?;
    serde_json::to_vec(&answer).map_err(|e| RemoteFailure::Failed("internal".into(), e.to_string()))
}

async fn read_here(node: &NodeInner, group: u64, body: &[u8]) -> RemoteResult<Vec<u8>> {
    let read: ShardRead =
        serde_json::from_slice(body).map_err(|e| RemoteFailure::Failed("bad_input".into(), e.to_string()))?;
    let g = node.group(group).ok_or(RemoteFailure::UnknownGroup(group))?;
    let shard = g.replica.shard();
    let answer = tokio::task::spawn_blocking(move || read.run(&shard))
        .await
        .map_err(|e| RemoteFailure::Unavailable(e.to_string()))?;
    match answer {
        Ok(v) => serde_json::to_vec(&v).map_err(|e| RemoteFailure::Failed("internal".into(), e.to_string())),
        Err(e) => Err(RemoteFailure::Failed(error_kind(&e).into(), e.to_string())),
    }
}
