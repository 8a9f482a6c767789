//! A minimal ONNX writer for tests: hand-encodes the few protobuf messages a tiny graph
//! needs (ModelProto, GraphProto, NodeProto, TensorProto, ValueInfoProto), so that the
//! runtime's session code can be tested without Python or an exported model.

#![allow(dead_code)]

/// Protobuf wire encoding.
#[derive(Default)]
pub struct Msg(Vec<u8>);

impl Msg {
    fn key(&mut self, field: u32, wire: u32) {
        self.varint(u64::from(field << 3 | wire));
    }
    fn varint(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                break;
            }
            self.0.push(b | 0x80);
        }
    }
    pub fn int(mut self, field: u32, v: i64) -> Self {
        self.key(field, 0);
        self.varint(v as u64);
        self
    }
    pub fn bytes(mut self, field: u32, b: &[u8]) -> Self {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    pub fn str(self, field: u32, s: &str) -> Self {
        self.bytes(field, s.as_bytes())
    }
    pub fn msg(self, field: u32, m: Msg) -> Self {
        self.bytes(field, &m.0)
    }
    pub fn float(mut self, field: u32, v: f32) -> Self {
        self.key(field, 5);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

pub const FLOAT: i64 = 1;
pub const INT64: i64 = 7;

/// A dimension: a fixed size or a symbolic name.
pub enum Dim {
    Fixed(i64),
    Sym(&'static str),
}

/// ValueInfoProto for a tensor.
pub fn value_info(name: &str, elem: i64, dims: &[Dim]) -> Msg {
    let mut shape = Msg::default();
    for d in dims {
        let dim = match d {
            Dim::Fixed(v) => Msg::default().int(1, *v),
            Dim::Sym(s) => Msg::default().str(2, s),
        };
        shape = shape.msg(1, dim);
    }
    let tensor = Msg::default().int(1, elem).msg(2, shape);
    let ty = Msg::default().msg(1, tensor);
    Msg::default().str(1, name).msg(2, ty)
}

/// A float initializer.
pub fn float_tensor(name: &str, dims: &[i64], data: &[f32]) -> Msg {
    let mut m = Msg::default();
    for &d in dims {
        m = m.int(1, d);
    }
    let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    m.int(2, FLOAT).str(8, name).bytes(9, &raw)
}

/// An int64 initializer.
pub fn int_tensor(name: &str, dims: &[i64], data: &[i64]) -> Msg {
    let mut m = Msg::default();
    for &d in dims {
        m = m.int(1, d);
    }
    let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    m.int(2, INT64).str(8, name).bytes(9, &raw)
}

/// An attribute.
pub enum Attr {
    Int(&'static str, i64),
    Ints(&'static str, Vec<i64>),
}

/// A node.
pub fn node(op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<Attr>) -> Msg {
    let mut m = Msg::default();
    for i in inputs {
        m = m.str(1, i);
    }
    for o in outputs {
        m = m.str(2, o);
    }
    m = m.str(4, op);
    for a in attrs {
        let attr = match a {
            Attr::Int(name, v) => Msg::default().str(1, name).int(3, v).int(20, 2),
            Attr::Ints(name, vs) => {
                let mut m = Msg::default().str(1, name);
                for v in vs {
                    m = m.int(8, v);
                }
                m.int(20, 7)
            }
        };
        m = m.msg(5, attr);
    }
    m
}

/// A ModelProto (IR 8, default-domain opset 17).
pub fn model(
    nodes: Vec<Msg>,
    initializers: Vec<Msg>,
    inputs: Vec<Msg>,
    outputs: Vec<Msg>,
) -> Vec<u8> {
    let mut graph = Msg::default();
    for n in nodes {
        graph = graph.msg(1, n);
    }
    graph = graph.str(2, "g");
    for i in initializers {
        graph = graph.msg(5, i);
    }
    for i in inputs {
        graph = graph.msg(11, i);
    }
    for o in outputs {
        graph = graph.msg(12, o);
    }
    Msg::default()
        .int(1, 8)
        .str(2, "vtde-runtime-tests")
        .msg(7, graph)
        .msg(8, Msg::default().str(1, "").int(2, 17))
        .into_bytes()
}
