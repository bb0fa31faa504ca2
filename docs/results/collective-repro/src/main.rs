//! Two processes, one device each, three global all-reduces in a row with burn-collective 0.21.
//! `repro 0 PORT` hosts the orchestrator on PORT and is node 0; `repro 1 PORT` is node 1.
use std::time::Instant;

use burn::backend::Flex;
use burn::tensor::{Tensor, TensorPrimitive};
use burn_collective::{
    AllReduceStrategy, CollectiveConfig, PeerId, ReduceOperation, all_reduce, register,
};

type B = Flex;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rank: u16 = args[1].parse().unwrap();
    let port: u16 = args[2].parse().unwrap();
    let strategy = match args.get(3).map(String::as_str) {
        Some("ring") => AllReduceStrategy::Ring,
        Some("centralized") => AllReduceStrategy::Centralized,
        _ => AllReduceStrategy::Tree(2),
    };
    if rank == 0 {
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(burn_collective::start_global_orchestrator(port));
        });
    }
    let data_port = port + 1 + rank;
    let config = CollectiveConfig::default()
        .with_num_devices(1)
        .with_num_nodes(2)
        .with_global_address(format!("ws://127.0.0.1:{port}").parse().unwrap())
        .with_node_address(format!("ws://127.0.0.1:{data_port}").parse().unwrap())
        .with_data_service_port(data_port)
        .with_global_all_reduce_strategy(strategy);
    let device = Default::default();
    let peer = PeerId::from(0);
    register::<B>(peer, device, config).unwrap();
    for op in 1..=3 {
        let t = Tensor::<B, 1>::from_floats([1.0 + rank as f32; 8], &Default::default());
        let start = Instant::now();
        let out = all_reduce::<B>(peer, t.into_primitive().tensor(), ReduceOperation::Sum).unwrap();
        let out = Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(out));
        println!(
            "node {rank}: all-reduce {op} done in {:?}: {:?}",
            start.elapsed(),
            out.to_data().to_vec::<f32>().unwrap()
        );
    }
}
