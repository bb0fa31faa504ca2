//! Running a [`GraphModel`] on a Burn backend: the graph's nodes evaluated on demand from the
//! requested outputs back to the inputs, in NCHW (the graph's NHWC is converted where
//! constants meet activations), for the operations convolutional image models use.

use std::collections::HashMap;
use std::sync::Arc;

use burn::tensor::module::{conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, PadMode};
use burn::tensor::{Tensor, TensorData, activation, backend::Backend};

use super::TfjsError;
use super::format::{Constant, GraphModel, Node};
use super::layout::{burn_filter, nchw_axis, resize_matrix, same_padding};

/// A value flowing through the graph: an activation map, or a constant not yet placed.
#[derive(Clone)]
enum Value<B: Backend> {
    Map(Tensor<B, 4>),
    Const(Arc<Constant>),
}

/// A graph model ready to run on one device, its convolution weights laid out for Burn.
pub struct TfjsModel<B: Backend> {
    nodes: HashMap<String, Node>,
    constants: HashMap<String, Arc<Constant>>,
    /// `[out, in / groups, kh, kw]` weights, biases and input channels of every convolution
    /// node, by name.
    kernels: HashMap<String, Kernel<B>>,
    /// `[h, w]` of the input as the graph declares it, when fixed.
    declared: Option<[usize; 2]>,
    device: B::Device,
}

/// A convolution's filter laid out for Burn, its bias, and the input channels it reads.
struct Kernel<B: Backend> {
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    inputs: usize,
}

/// What one run needs besides the values: how much larger than declared the input is, so
/// that resizes to constant sizes (written for the declared input) scale with it.
struct RunScale([f64; 2]);

fn unsupported(node: &Node, what: impl std::fmt::Display) -> TfjsError {
    TfjsError::Unsupported(format!("node {} ({}): {what}", node.name, node.op))
}

/// Input name without its output index (`name:0`) or control mark (`^name`).
fn source(input: &str) -> Result<&str, String> {
    let name = input.trim_start_matches('^');
    match name.rsplit_once(':') {
        Some((base, "0")) => Ok(base),
        Some((_, k)) if k.parse::<usize>().is_ok() => Err(format!("output {k} of {name}")),
        _ => Ok(name),
    }
}

impl<B: Backend> TfjsModel<B> {
    /// Prepares `graph` for `device`: every convolution's filter laid out once.
    pub fn new(graph: GraphModel, device: &B::Device) -> Result<Self, TfjsError> {
        let constants: HashMap<String, Arc<Constant>> = graph
            .constants
            .into_iter()
            .map(|(k, v)| (k, Arc::new(v)))
            .collect();
        let mut kernels = HashMap::new();
        for node in &graph.nodes {
            let depthwise = node.op.contains("Depthwise");
            if !(node.op.contains("Conv2D") || depthwise) {
                continue;
            }
            let filter_name = node.inputs.get(1).map(|i| source(i)).transpose();
            let filter = filter_name
                .ok()
                .flatten()
                .and_then(|n| constants.get(n))
                .ok_or_else(|| unsupported(node, "its filter is not a constant"))?;
            let (values, shape) = burn_filter(filter, depthwise)
                .ok_or_else(|| unsupported(node, format!("filter of shape {:?}", filter.shape)))?;
            let weight = Tensor::from_data(TensorData::new(values, shape), device);
            let fused = node.op.starts_with("_Fused") || node.op.starts_with("Fused");
            let bias = match node.inputs.get(2).filter(|_| fused) {
                Some(b) => {
                    let c = source(b)
                        .ok()
                        .and_then(|n| constants.get(n))
                        .ok_or_else(|| unsupported(node, "its bias is not a constant"))?;
                    if c.values.len() != shape[0] {
                        return Err(unsupported(
                            node,
                            format!("a bias of {} for {} outputs", c.values.len(), shape[0]),
                        ));
                    }
                    Some(Tensor::from_data(
                        TensorData::new(c.values.clone(), [c.values.len()]),
                        device,
                    ))
                }
                None => None,
            };
            let inputs = filter.shape[2];
            kernels.insert(
                node.name.clone(),
                Kernel {
                    weight,
                    bias,
                    inputs,
                },
            );
        }
        let declared = graph
            .nodes
            .iter()
            .find(|n| n.op == "Placeholder")
            .and_then(|n| {
                let dims = n.attrs.get("shape")?.pointer("/shape/dim")?.as_array()?;
                let size = |i: usize| -> Option<usize> {
                    let d = dims.get(i)?.get("size")?;
                    d.as_str()
                        .and_then(|s| s.parse().ok())
                        .or_else(|| d.as_u64().map(|v| v as usize))
                };
                Some([size(1)?, size(2)?])
            });
        let nodes = graph
            .nodes
            .into_iter()
            .map(|n| (n.name.clone(), n))
            .collect();
        Ok(TfjsModel {
            nodes,
            constants,
            kernels,
            declared,
            device: device.clone(),
        })
    }

    /// Whether the graph has a node of this name.
    pub fn has_node(&self, name: &str) -> bool {
        self.nodes.contains_key(name)
    }

    /// Evaluates the named nodes with `inputs` (placeholder name, `[n, c, h, w]` image) fed
    /// in; each output comes back as `[n, c, h, w]`. An input of another size than the graph
    /// declares is allowed where the graph is convolutional; resizes to a constant size then
    /// scale with the input (such constants come from the declared size at conversion).
    pub fn run(
        &self,
        inputs: &[(&str, Tensor<B, 4>)],
        outputs: &[&str],
    ) -> Result<Vec<Tensor<B, 4>>, TfjsError> {
        let mut values: HashMap<String, Value<B>> = inputs
            .iter()
            .map(|(name, t)| (name.to_string(), Value::Map(t.clone())))
            .collect();
        let scale = match (self.declared, inputs.first()) {
            (Some([dh, dw]), Some((_, t))) if dh > 0 && dw > 0 => {
                let [_, _, h, w] = t.dims();
                RunScale([h as f64 / dh as f64, w as f64 / dw as f64])
            }
            _ => RunScale([1.0, 1.0]),
        };
        outputs
            .iter()
            .map(|name| match self.eval(name, &mut values, &scale, 0)? {
                Value::Map(t) => Ok(t),
                Value::Const(_) => Err(TfjsError::Unsupported(format!("{name} is a constant"))),
            })
            .collect()
    }

    fn eval(
        &self,
        name: &str,
        memo: &mut HashMap<String, Value<B>>,
        scale: &RunScale,
        depth: usize,
    ) -> Result<Value<B>, TfjsError> {
        if let Some(v) = memo.get(name) {
            return Ok(v.clone());
        }
        if depth > 10_000 {
            return Err(TfjsError::Format(format!(
                "graph deeper than 10000 at {name}"
            )));
        }
        let node = self
            .nodes
            .get(name)
            .ok_or_else(|| TfjsError::Format(format!("no node named {name}")))?;
        let value = if node.op == "Const" {
            Value::Const(
                self.constants
                    .get(name)
                    .cloned()
                    .ok_or_else(|| unsupported(node, "no weight of that name in the manifest"))?,
            )
        } else if node.op == "Placeholder" {
            return Err(unsupported(node, "an input that was not fed"));
        } else {
            let mut args = Vec::with_capacity(node.inputs.len());
            for input in node.inputs.iter().filter(|i| !i.starts_with('^')) {
                let src = source(input).map_err(|e| unsupported(node, e))?;
                args.push(self.eval(src, memo, scale, depth + 1)?);
            }
            Value::Map(self.apply(node, args, scale)?)
        };
        memo.insert(name.to_string(), value.clone());
        Ok(value)
    }

    /// A constant as a map that broadcasts against `[n, c, h, w]`: a scalar, a per-channel
    /// vector, or a whole NHWC tensor.
    fn placed(&self, node: &Node, c: &Constant) -> Result<Tensor<B, 4>, TfjsError> {
        let data = |shape: [usize; 4]| TensorData::new(c.values.clone(), shape);
        Ok(match c.shape.as_slice() {
            [] => Tensor::from_data(data([1, 1, 1, 1]), &self.device),
            [ch] | [1, ch] | [1, 1, ch] | [1, 1, 1, ch] => {
                Tensor::from_data(data([1, *ch, 1, 1]), &self.device)
            }
            [n, h, w, ch] => {
                Tensor::from_data(data([*n, *h, *w, *ch]), &self.device).permute([0, 3, 1, 2])
            }
            s => {
                return Err(unsupported(
                    node,
                    format!("a constant operand of shape {s:?}"),
                ));
            }
        })
    }

    fn map(&self, node: &Node, v: Value<B>) -> Result<Tensor<B, 4>, TfjsError> {
        match v {
            Value::Map(t) => Ok(t),
            Value::Const(c) => self.placed(node, &c),
        }
    }

    fn ints(node: &Node, v: &Value<B>) -> Result<Vec<i64>, TfjsError> {
        match v {
            Value::Const(c) => Ok(c.values.iter().map(|&x| x as i64).collect()),
            Value::Map(_) => Err(unsupported(node, "an axis or size computed at run time")),
        }
    }

    fn apply(
        &self,
        node: &Node,
        args: Vec<Value<B>>,
        scale: &RunScale,
    ) -> Result<Tensor<B, 4>, TfjsError> {
        if let Some(format) = node.string("data_format").filter(|f| f != "NHWC") {
            return Err(unsupported(node, format!("data format {format}")));
        }
        let arg = |i: usize| {
            args.get(i)
                .cloned()
                .ok_or_else(|| unsupported(node, format!("missing input {i}")))
        };
        let first = || self.map(node, arg(0)?);
        Ok(match node.op.as_str() {
            "Identity" => first()?,
            "Relu" => activation::relu(first()?),
            "Relu6" => first()?.clamp(0.0, 6.0),
            "Sigmoid" => activation::sigmoid(first()?),
            "Add" | "AddV2" | "BiasAdd" | "Sub" | "Mul" | "RealDiv" => {
                let (a, b) = (first()?, self.map(node, arg(1)?)?);
                let (da, db) = (a.dims(), b.dims());
                if da
                    .iter()
                    .zip(&db)
                    .any(|(&x, &y)| x != y && x != 1 && y != 1)
                {
                    return Err(unsupported(
                        node,
                        format!("operands {da:?} and {db:?} (NCHW)"),
                    ));
                }
                match node.op.as_str() {
                    "Sub" => a - b,
                    "Mul" => a * b,
                    "RealDiv" => a / b,
                    _ => a + b,
                }
            }
            "Conv2D" | "_FusedConv2D" | "DepthwiseConv2dNative" | "FusedDepthwiseConv2dNative" => {
                self.convolution(node, first()?)?
            }
            "Mean" => {
                if !node.flag("keep_dims") {
                    return Err(unsupported(node, "a mean without keep_dims"));
                }
                let mut x = first()?;
                for axis in Self::ints(node, &arg(1)?)? {
                    let a =
                        nchw_axis(axis).ok_or_else(|| unsupported(node, format!("axis {axis}")))?;
                    x = x.mean_dim(a);
                }
                x
            }
            "ConcatV2" => {
                let (axis, parts) = args
                    .split_last()
                    .ok_or_else(|| unsupported(node, "no inputs"))?;
                let axis = Self::ints(node, axis)?.first().copied().unwrap_or(-1);
                let a = nchw_axis(axis).ok_or_else(|| unsupported(node, format!("axis {axis}")))?;
                let maps = parts
                    .iter()
                    .map(|v| self.map(node, v.clone()))
                    .collect::<Result<Vec<_>, _>>()?;
                let first = maps.first().map(|m| m.dims()).unwrap_or_default();
                if let Some(m) = maps.iter().find(|m| {
                    let d = m.dims();
                    (0..4).any(|i| i != a && d[i] != first[i])
                }) {
                    return Err(unsupported(
                        node,
                        format!("concatenating {first:?} with {:?} (NCHW)", m.dims()),
                    ));
                }
                Tensor::cat(maps, a)
            }
            "ResizeBilinear" => {
                let size = Self::ints(node, &arg(1)?)?;
                let [oh, ow] = <[i64; 2]>::try_from(size.as_slice())
                    .map_err(|_| unsupported(node, format!("size {size:?}")))?;
                let [sh, sw] = scale.0;
                let scaled = |v: i64, s: f64| ((v as f64 * s).round() as usize).max(1);
                self.resize(node, first()?, [scaled(oh, sh), scaled(ow, sw)])
            }
            "MaxPool" => {
                let k = node.ints("ksize").unwrap_or_default();
                let s = node.ints("strides").unwrap_or_default();
                let (
                    &[1, kh @ 1..=i64::MAX, kw @ 1..=i64::MAX, 1],
                    &[1, sh @ 1..=i64::MAX, sw @ 1..=i64::MAX, 1],
                ) = (k.as_slice(), s.as_slice())
                else {
                    return Err(unsupported(node, format!("ksize {k:?}, strides {s:?}")));
                };
                let x = first()?;
                let [kh, kw, sh, sw] = [kh, kw, sh, sw].map(|v| v as usize);
                let x = self.pad(node, x, [kh, kw], [sh, sw], [1, 1], f32::NEG_INFINITY)?;
                max_pool2d(x, [kh, kw], [sh, sw], [0, 0], [1, 1], false)
            }
            other => {
                return Err(unsupported(
                    node,
                    format!("operation {other} is not supported"),
                ));
            }
        })
    }

    /// `x` padded as the node's `padding` says for a window of `kernel`.
    fn pad(
        &self,
        node: &Node,
        x: Tensor<B, 4>,
        kernel: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
        fill: f32,
    ) -> Result<Tensor<B, 4>, TfjsError> {
        match node.string("padding").as_deref() {
            Some("VALID") => Ok(x),
            Some("SAME") => {
                let [_, _, h, w] = x.dims();
                let (top, bottom) = same_padding(h, kernel[0], stride[0], dilation[0]);
                let (left, right) = same_padding(w, kernel[1], stride[1], dilation[1]);
                if top + bottom + left + right == 0 {
                    return Ok(x);
                }
                Ok(x.pad((left, right, top, bottom), PadMode::Constant(fill)))
            }
            other => Err(unsupported(node, format!("padding {other:?}"))),
        }
    }

    fn convolution(&self, node: &Node, x: Tensor<B, 4>) -> Result<Tensor<B, 4>, TfjsError> {
        let kernel = self
            .kernels
            .get(&node.name)
            .ok_or_else(|| unsupported(node, "no prepared filter"))?;
        let s = node.ints("strides").unwrap_or(vec![1, 1, 1, 1]);
        let d = node.ints("dilations").unwrap_or(vec![1, 1, 1, 1]);
        let (
            &[1, sh @ 1..=i64::MAX, sw @ 1..=i64::MAX, 1],
            &[1, dh @ 1..=i64::MAX, dw @ 1..=i64::MAX, 1],
        ) = (s.as_slice(), d.as_slice())
        else {
            return Err(unsupported(node, format!("strides {s:?}, dilations {d:?}")));
        };
        let [stride, dilation] = [[sh, sw], [dh, dw]].map(|p| p.map(|v| v as usize));
        let [_, _, kh, kw] = kernel.weight.dims();
        let [_, channels, _, _] = x.dims();
        if channels != kernel.inputs {
            return Err(unsupported(
                node,
                format!(
                    "{channels} input channels for a filter of {}",
                    kernel.inputs
                ),
            ));
        }
        // A depthwise filter is one group per input channel; a plain one a single group.
        let groups = if node.op.contains("Depthwise") {
            channels
        } else {
            1
        };
        let x = self.pad(node, x, [kh, kw], stride, dilation, 0.0)?;
        let options = ConvOptions::new(stride, [0, 0], dilation, groups);
        let y = conv2d(x, kernel.weight.clone(), kernel.bias.clone(), options);
        let fused = node.strings("fused_ops").unwrap_or_default();
        let mut ops = fused.iter().map(String::as_str);
        if node.op.contains("Fused") && ops.next() != Some("BiasAdd") {
            return Err(unsupported(node, format!("fused ops {fused:?}")));
        }
        Ok(match ops.next() {
            None => y,
            Some("Relu") => activation::relu(y),
            Some("Relu6") => y.clamp(0.0, 6.0),
            Some("Sigmoid") => activation::sigmoid(y),
            Some(other) => return Err(unsupported(node, format!("fused activation {other}"))),
        })
    }

    /// TensorFlow's bilinear resize of `[n, c, h, w]` to `[n, c, oh, ow]`, as two matrix
    /// products with its interpolation matrices.
    fn resize(&self, node: &Node, x: Tensor<B, 4>, [oh, ow]: [usize; 2]) -> Tensor<B, 4> {
        let [n, c, h, w] = x.dims();
        let (align, half) = (node.flag("align_corners"), node.flag("half_pixel_centers"));
        let ry = resize_matrix(h, oh, align, half);
        let rx = resize_matrix(w, ow, align, half);
        let ry: Tensor<B, 3> = Tensor::from_data(TensorData::new(ry, [1, oh, h]), &self.device);
        let rx: Tensor<B, 3> = Tensor::from_data(TensorData::new(rx, [1, ow, w]), &self.device);
        let rows = x
            .reshape([n * c, h, w])
            .matmul(rx.transpose().expand([n * c, w, ow]));
        ry.expand([n * c, oh, h])
            .matmul(rows)
            .reshape([n, c, oh, ow])
    }
}
