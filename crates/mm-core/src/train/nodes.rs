//! Training over several processes (nodes), with burn-collective's all-reduce.
//!
//! Each node is one process (one machine, or one of several on loopback) running the same
//! training command with the same config and data; [`join`] makes this process node `rank` of
//! `nodes` before training starts. Then, in [`fit`](super::fit):
//!
//! - every step's batch is cut into `nodes x devices` [`Share`]s; node `r` builds shares
//!   `r * devices .. (r + 1) * devices` (one per local device);
//! - each local device computes its share's gradient (weighted by its fraction of the batch)
//!   and burn-optim's [`GradientsParams::all_reduce`] sums it with every other device's, over
//!   burn-collective (trees between local devices and between nodes, over WebSockets);
//! - every node then applies the same summed gradient with the same optimizer, so the weights
//!   stay identical on every node, and equal to one process training on the whole batch.
//!
//! Node 0 hosts burn-collective's global orchestrator (the rendezvous where nodes register and
//! learn each other's addresses) on the `--orchestrator` port. Each node serves the tensors it
//! contributes on its own `--node-address`. A collective call that gets no answer within the
//! group's timeout (a node was killed, or the network failed) ends this process with an error
//! naming the step: the checkpoints already written stay whole, and `--resume` on every node
//! continues the run.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use burn::module::{AutodiffModule, Module, ModuleMapper, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorPrimitive};
use burn_collective::{
    AllReduceStrategy, CollectiveConfig, PeerId, ReduceOperation, finish_collective, register,
    start_global_orchestrator,
};

use super::loader::{Share, StepInfo};

/// This process's place in a group of training processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeGroup {
    /// Number of nodes (processes) in the group.
    pub nodes: usize,
    /// This node's rank, `0..nodes`; node 0 hosts the orchestrator.
    pub rank: usize,
    /// `HOST:PORT` of the orchestrator (node 0's machine and a free port).
    pub orchestrator: String,
    /// `HOST:PORT` where the other nodes reach this one (its tensor service).
    pub node_address: String,
    /// How long a collective call may wait for the other nodes before this process gives up.
    pub timeout: Duration,
}

/// Why a node group cannot be formed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NodeError {
    /// Inconsistent flags.
    #[error("invalid node group: {0}")]
    Settings(String),
    /// [`join`] was called twice.
    #[error("this process already joined a node group")]
    AlreadyJoined,
}

impl NodeGroup {
    /// Checks the group's settings: a rank below the node count, `HOST:PORT` addresses.
    pub fn validate(&self) -> Result<(), NodeError> {
        let bad = |m: String| Err(NodeError::Settings(m));
        if self.nodes < 2 {
            return bad(format!("--nodes must be at least 2, not {}", self.nodes));
        }
        if self.rank >= self.nodes {
            return bad(format!(
                "--node-rank {} is not below --nodes {}",
                self.rank, self.nodes
            ));
        }
        for (flag, address) in [
            ("--orchestrator", &self.orchestrator),
            ("--node-address", &self.node_address),
        ] {
            port_of(address).map_err(|e| NodeError::Settings(format!("{flag} {e}")))?;
        }
        if self.timeout.is_zero() {
            return bad("the collective timeout must be above 0 s".into());
        }
        Ok(())
    }

    /// The share of every batch this node builds when it has `devices` local devices.
    pub fn share(&self) -> Share {
        Share {
            index: self.rank,
            count: self.nodes,
            nodes: self.nodes,
        }
    }
}

fn port_of(address: &str) -> Result<u16, String> {
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("{address:?} is not HOST:PORT"))?;
    if host.is_empty() {
        return Err(format!("{address:?} has no host"));
    }
    port.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("{address:?} has no valid port"))
}

static GROUP: OnceLock<NodeGroup> = OnceLock::new();
static REGISTERED: Mutex<Option<HashSet<usize>>> = Mutex::new(None);
/// Collective calls in progress: local peer -> (step, since).
static WAITING: Mutex<Option<HashMap<usize, (usize, Instant)>>> = Mutex::new(None);

/// Makes this process a node of `group` for the rest of its life. Node 0 starts the
/// orchestrator; every node starts a watchdog that ends the process when a collective call
/// outlives `group.timeout`.
pub fn join(group: NodeGroup) -> Result<(), NodeError> {
    group.validate()?;
    if GROUP.get().is_some() {
        return Err(NodeError::AlreadyJoined);
    }
    let port = port_of(&group.orchestrator).map_err(NodeError::Settings)?;
    let timeout = group.timeout;
    let rank = group.rank;
    GROUP.set(group).map_err(|_| NodeError::AlreadyJoined)?;
    if rank == 0 {
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime starts");
            // The orchestrator runs until SIGINT or SIGTERM, which it catches: the process
            // then stops as it would have without it.
            runtime.block_on(start_global_orchestrator(port));
            eprintln!("node 0: interrupted, the orchestrator stopped");
            std::process::exit(130);
        });
    }
    std::thread::spawn(move || watchdog(timeout));
    Ok(())
}

/// The group this process joined, if any.
pub fn current() -> Option<&'static NodeGroup> {
    GROUP.get()
}

fn watchdog(timeout: Duration) {
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let late = WAITING.lock().ok().and_then(|w| {
            w.as_ref()?
                .values()
                .find(|(_, since)| since.elapsed() > timeout)
                .copied()
        });
        if let Some((step, _)) = late {
            let rank = current().map_or(0, |g| g.rank);
            eprintln!(
                "error: node {rank}: no answer from the other nodes for {} s at step {} (a node \
                 stopped, or the network failed); the checkpoints written so far are whole: \
                 restart every node with --resume",
                timeout.as_secs_f64(),
                step + 1
            );
            std::process::exit(2);
        }
    }
}

/// Runs `call` as local peer `peer`'s collective call of step `step`, under the watchdog.
fn watched<T>(peer: usize, step: usize, call: impl FnOnce() -> T) -> T {
    if let Ok(mut w) = WAITING.lock() {
        w.get_or_insert_with(HashMap::new)
            .insert(peer, (step, Instant::now()));
    }
    let out = call();
    if let Ok(mut w) = WAITING.lock()
        && let Some(w) = w.as_mut()
    {
        w.remove(&peer);
    }
    out
}

fn fail(what: &str, step: usize, error: impl std::fmt::Debug) -> ! {
    let rank = current().map_or(0, |g| g.rank);
    eprintln!(
        "error: node {rank}: {what} failed at step {}: {error:?}; the checkpoints written so far \
         are whole: restart every node with --resume",
        step + 1
    );
    std::process::exit(2)
}

fn config(group: &NodeGroup, devices: usize) -> CollectiveConfig {
    let port = port_of(&group.node_address).expect("validated by join");
    CollectiveConfig::default()
        .with_num_devices(devices)
        .with_num_nodes(group.nodes as u32)
        .with_global_address(
            format!("ws://{}", group.orchestrator)
                .parse()
                .expect("any string is an address"),
        )
        .with_node_address(
            format!("ws://{}", group.node_address)
                .parse()
                .expect("any string is an address"),
        )
        .with_data_service_port(port)
        // burn-collective's ring cannot cut a tensor with fewer rows than nodes (the logit
        // scale has one): a binary tree reduces any shape.
        .with_global_all_reduce_strategy(AllReduceStrategy::Tree(2))
}

/// Registers local peer `peer` with the group's collective before its first call.
fn ensure_registered<B: Backend>(group: &NodeGroup, share: Share, step: usize, device: &B::Device) {
    let devices = share.local_count();
    let peer = share.index % devices;
    let first = REGISTERED
        .lock()
        .map(|mut r| r.get_or_insert_with(HashSet::new).insert(peer))
        .unwrap_or(false);
    if first
        && let Err(e) = watched(peer, step, || {
            register::<B>(PeerId::from(peer), device.clone(), config(group, devices))
        })
    {
        fail("joining the node group", step, e);
    }
}

/// Sums `grads` (local share `share` of step `step`, on `device`) with every other share's in
/// the group, when this process joined one; returns them unchanged otherwise.
pub(crate) fn all_reduce<B: AutodiffBackend>(
    grads: GradientsParams,
    share: Share,
    step: usize,
    device: &B::Device,
) -> GradientsParams {
    let Some(group) = current() else {
        return grads;
    };
    ensure_registered::<B::InnerBackend>(group, share, step, device);
    let peer = share.index % share.local_count();
    match watched(peer, step, || {
        grads.all_reduce::<B::InnerBackend>(PeerId::from(peer), ReduceOperation::Sum)
    }) {
        Ok(g) => g,
        Err(e) => fail("the gradient all-reduce", step, e),
    }
}

/// Every share's rows of a per-sample tensor, when this process is one of a node group:
/// `local` holds this share's rows `[rows, dim]`; the result is the whole step's `[batch, dim]`,
/// in which this share's rows stay in the autodiff graph and the other shares' are constants
/// (summed into place over the group). `None` outside a group.
///
/// A loss over the gathered batch (CLIP's contrastive loss, whose negatives are the whole
/// batch) is then the whole batch's loss on every share, and the sum of the shares' gradients
/// is the whole batch's gradient; see [`StepInfo::train_output_gathered`](super::StepInfo::train_output_gathered).
pub fn gather_rows<B: AutodiffBackend>(local: Tensor<B, 2>, at: &StepInfo) -> Option<Tensor<B, 2>> {
    let group = current()?;
    let device = local.device();
    ensure_registered::<B::InnerBackend>(group, at.share, at.step, &device);
    let [_, dim] = local.dims();
    let rows = at.share.rows(at.batch_size);
    let padded = Tensor::<B::InnerBackend, 2>::zeros([at.batch_size, dim], &device)
        .slice_assign([rows.clone(), 0..dim], local.clone().inner());
    let peer = at.share.index % at.share.local_count();
    let summed = match watched(peer, at.step, || {
        all_reduce_tensor::<B::InnerBackend>(PeerId::from(peer), padded.into_primitive().tensor())
    }) {
        Ok(t) => t,
        Err(e) => fail("gathering the batch", at.step, e),
    };
    let whole = Tensor::<B, 2>::from_inner(Tensor::from_primitive(TensorPrimitive::Float(summed)));
    Some(whole.slice_assign([rows, 0..dim], local))
}

fn all_reduce_tensor<B: Backend>(
    peer: PeerId,
    tensor: B::FloatTensorPrimitive,
) -> Result<B::FloatTensorPrimitive, burn_collective::CollectiveError> {
    burn_collective::all_reduce::<B>(peer, tensor, ReduceOperation::Sum)
}

/// Leaves the group's collective after the last step (each local peer unregisters).
pub(crate) fn finish<B: Backend>() {
    if current().is_none() {
        return;
    }
    let peers: Vec<usize> = REGISTERED
        .lock()
        .ok()
        .and_then(|mut r| r.take())
        .map(|r| r.into_iter().collect())
        .unwrap_or_default();
    for peer in peers {
        if let Err(e) = watched(peer, usize::MAX - 1, || {
            finish_collective::<B>(PeerId::from(peer))
        }) {
            fail("leaving the node group", usize::MAX - 1, e);
        }
    }
}

/// Gives every float parameter of `module` an id from its position in the module, the same in
/// every process: burn-optim all-reduces gradients in id order, so every node must agree.
pub fn positional_param_ids<B: Backend, M: Module<B>>(module: M) -> M {
    struct Renumber(u64);
    impl<B: Backend> ModuleMapper<B> for Renumber {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let (_, tensor, mapper) = param.consume();
            self.0 += 1;
            Param::from_mapped_value(ParamId::from(self.0), tensor, mapper)
        }
    }
    module.map(&mut Renumber(0))
}

/// Whether [`positional_param_ids`] must run before training (this process is a node).
pub(crate) fn renumber_for_group<B: AutodiffBackend, M: AutodiffModule<B>>(module: M) -> M {
    if current().is_some() {
        positional_param_ids(module)
    } else {
        module
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(nodes: usize, rank: usize, orchestrator: &str) -> NodeGroup {
        NodeGroup {
            nodes,
            rank,
            orchestrator: orchestrator.into(),
            node_address: "127.0.0.1:7001".into(),
            timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn bad_groups_are_named() {
        let err = |g: NodeGroup| g.validate().unwrap_err().to_string();
        assert!(err(group(1, 0, "h:1")).contains("--nodes must be at least 2"));
        assert!(err(group(2, 2, "h:1")).contains("--node-rank 2 is not below --nodes 2"));
        assert!(err(group(2, 0, "h")).contains("--orchestrator \"h\" is not HOST:PORT"));
        assert!(err(group(2, 0, "h:0")).contains("no valid port"));
        assert!(err(group(2, 0, ":80")).contains("no host"));
        assert!(group(3, 2, "10.0.0.1:7000").validate().is_ok());
    }

    #[test]
    fn a_node_builds_its_rank_of_the_shares() {
        let g = group(3, 1, "h:1");
        assert_eq!(g.share().rows(12), 4..8);
        assert_eq!(g.share().local_count(), 1);
    }
}
