//! The node-to-node transport: one tonic service per node (`grape.internal.Internal/Call`) carrying
//! the Raft RPCs of every group plus forwarded writes, replica reads and joins. Each message's body is
//! the postcard encoding of its Rust type (JSON for shard reads and their answers, which carry
//! free-form payload JSON that postcard cannot).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{AnyError, RaftNetwork, RaftNetworkFactory, RaftTypeConfig};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tonic::transport::{Channel, Endpoint};

use crate::pb::internal_client::InternalClient;
use crate::pb::Envelope;
use crate::types::{GroupId, NodeId, PeerNode};

/// Message kinds of the Raft RPCs; the group's kind (metadata or shard) is told by the group id.
pub const APPEND: &str = "append";
pub const VOTE: &str = "vote";
pub const SNAPSHOT: &str = "snapshot";

/// An error of a forwarded request, as it travels between nodes.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
pub enum RemoteFailure {
    /// The receiving node is not the group's leader; the leader it knows of, if any.
    #[error("not the leader (leader: {0:?})")]
    NotLeader(Option<NodeId>),
    /// The node does not hold the group (yet or any more).
    #[error("group {0} is not held here")]
    UnknownGroup(GroupId),
    /// Retryable: no quorum, shutting down, timed out.
    #[error("{0}")]
    Unavailable(String),
    /// The request itself failed (bad input, not found, ...): (kind, message).
    #[error("{1}")]
    Failed(String, String),
    /// A write was committed but its acknowledgement level was not met in time (not every replica
    /// has it); sending it again would only write it twice.
    #[error("{0}")]
    Incomplete(String),
}

pub type RemoteResult<T> = Result<T, RemoteFailure>;

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, tonic::Status> {
    postcard::to_allocvec(value).map_err(|e| tonic::Status::internal(format!("encode: {e}")))
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, tonic::Status> {
    postcard::from_bytes(bytes).map_err(|e| tonic::Status::invalid_argument(format!("decode: {e}")))
}

/// Clients of the other nodes, by address; connections are made lazily and reused.
#[derive(Default)]
pub struct Peers {
    clients: Mutex<HashMap<String, InternalClient<Channel>>>,
}

impl Peers {
    pub fn client(&self, addr: &str) -> Result<InternalClient<Channel>, tonic::Status> {
        let mut clients = self.clients.lock();
        if let Some(c) = clients.get(addr) {
            return Ok(c.clone());
        }
        let endpoint = Endpoint::from_shared(addr.to_string())
            .map_err(|e| tonic::Status::invalid_argument(format!("bad peer address {addr}: {e}")))?
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10));
        let client = InternalClient::new(endpoint.connect_lazy())
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        clients.insert(addr.to_string(), client.clone());
        Ok(client)
    }

    /// One call to `addr`; `timeout` bounds the whole exchange.
    pub async fn call(
        &self,
        addr: &str,
        kind: &str,
        group: GroupId,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, tonic::Status> {
        let mut client = self.client(addr)?;
        let mut req = tonic::Request::new(Envelope { kind: kind.to_string(), group, payload });
        req.set_timeout(timeout);
        match tokio::time::timeout(timeout, client.call(req)).await {
            Ok(r) => Ok(r?.into_inner().payload),
            Err(_) => Err(tonic::Status::deadline_exceeded(format!("{kind} to {addr} timed out"))),
        }
    }
}

/// Makes Raft connections of one group.
pub struct Network<C> {
    pub peers: Arc<Peers>,
    pub group: GroupId,
    pub _c: PhantomData<C>,
}

pub struct Connection<C> {
    peers: Arc<Peers>,
    group: GroupId,
    target: NodeId,
    addr: String,
    _c: PhantomData<C>,
}

impl<C> RaftNetworkFactory<C> for Network<C>
where
    C: RaftTypeConfig<NodeId = NodeId, Node = PeerNode>,
{
    type Network = Connection<C>;

    async fn new_client(&mut self, target: NodeId, node: &PeerNode) -> Connection<C> {
        Connection {
            peers: Arc::clone(&self.peers),
            group: self.group,
            target,
            addr: node.p2p.clone(),
            _c: PhantomData,
        }
    }
}

impl<C> Connection<C>
where
    C: RaftTypeConfig<NodeId = NodeId, Node = PeerNode>,
{
    async fn rpc<Req, Resp, E>(
        &self,
        kind: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, PeerNode, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let bytes = postcard::to_allocvec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let reply = self
            .peers
            .call(&self.addr, kind, self.group, bytes, option.hard_ttl())
            .await
            .map_err(|s| RPCError::Unreachable(Unreachable::new(&AnyError::error(s.to_string()))))?;
        let answer: Result<Resp, RaftError<NodeId, E>> =
            postcard::from_bytes(&reply).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl<C> RaftNetwork<C> for Connection<C>
where
    C: RaftTypeConfig<NodeId = NodeId, Node = PeerNode>,
    AppendEntriesRequest<C>: Serialize,
    InstallSnapshotRequest<C>: Serialize,
{
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, PeerNode, RaftError<NodeId>>> {
        self.rpc(APPEND, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<C>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, PeerNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.rpc(SNAPSHOT, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, PeerNode, RaftError<NodeId>>> {
        self.rpc(VOTE, &rpc, &option).await
    }
}
