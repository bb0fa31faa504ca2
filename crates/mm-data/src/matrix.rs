//! Host matrices and their file formats: NumPy `.npy` (float32/float64, C or Fortran order) and
//! CSV (one sample per row).
//!
//! Reading checks everything a file claims against what it holds, so a truncated or malformed
//! file is an error that names the problem, never a panic or a huge allocation.

use std::fs;
use std::path::{Path, PathBuf};

use crate::fs::atomic_write;

/// A dense row-major matrix of `f64` on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostMatrix {
    /// Number of rows (samples).
    pub rows: usize,
    /// Number of columns (features).
    pub cols: usize,
    /// `rows * cols` values, row after row.
    pub data: Vec<f64>,
}

impl HostMatrix {
    /// Wraps row-major data, checking its length.
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Result<Self, MatrixError> {
        if data.len() != rows * cols {
            return Err(MatrixError::Shape(format!(
                "{} values do not fill a {rows} x {cols} matrix",
                data.len()
            )));
        }
        Ok(Self { rows, cols, data })
    }

    /// Value at `(row, col)`.
    pub fn get(&self, row: usize, col: usize) -> f64 {
        self.data[row * self.cols + col]
    }

    /// The values as `f32`, row-major (what a Burn float tensor is built from).
    pub fn to_f32(&self) -> Vec<f32> {
        self.data.iter().map(|&v| v as f32).collect()
    }
}

/// Why a matrix file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    /// The file could not be read or written.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file's content is not a valid matrix of the claimed format.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The data does not match the stated shape.
    #[error("{0}")]
    Shape(String),
}

/// Reads a matrix from `.npy` (by extension) or CSV (anything else).
pub fn read_matrix(path: &Path) -> Result<HostMatrix, MatrixError> {
    let bytes = fs::read(path).map_err(|source| MatrixError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let format_err = |message: String| MatrixError::Format {
        path: path.to_path_buf(),
        message,
    };
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
    {
        parse_npy(&bytes).map_err(format_err)
    } else {
        let text =
            std::str::from_utf8(&bytes).map_err(|e| format_err(format!("not UTF-8: {e}")))?;
        parse_csv(text).map_err(format_err)
    }
}

/// Writes row-major `f32` data as a C-order float32 `.npy`, atomically.
pub fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), MatrixError> {
    if shape.iter().product::<usize>() != data.len() {
        return Err(MatrixError::Shape(format!(
            "{} values do not fill shape {shape:?}",
            data.len()
        )));
    }
    let mut bytes = npy_header("<f4", shape);
    bytes.extend(data.iter().flat_map(|v| v.to_le_bytes()));
    write_file(path, &bytes)
}

/// Writes a matrix as a C-order float64 `.npy`, atomically.
pub fn write_npy_f64(path: &Path, matrix: &HostMatrix) -> Result<(), MatrixError> {
    let mut bytes = npy_header("<f8", &[matrix.rows, matrix.cols]);
    bytes.extend(matrix.data.iter().flat_map(|v| v.to_le_bytes()));
    write_file(path, &bytes)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), MatrixError> {
    atomic_write(path, bytes).map_err(|source| MatrixError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A version 1.0 header, padded so the data starts on a 64-byte boundary (NumPy's rule).
fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((dict.len() as u16).to_le_bytes());
    out.extend(dict.as_bytes());
    out
}

/// Parses a float32/float64 `.npy` of any rank into its shape and C-order values.
fn parse_npy_array(bytes: &[u8]) -> Result<(Vec<usize>, Vec<f64>), String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (missing the \\x93NUMPY magic)".into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = bytes
        .get(start..start + header_len)
        .ok_or("header is longer than the file")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not text")?;
    let descr = dict_value(header, "descr")?;
    let elem = match descr.trim_matches(|c| c == '\'' || c == '"') {
        "<f4" | "=f4" => 4,
        "<f8" | "=f8" => 8,
        other => {
            return Err(format!(
                "dtype {other} is not supported (little-endian float32 or float64 only)"
            ));
        }
    };
    let fortran = match dict_value(header, "fortran_order")?.trim() {
        "True" => true,
        "False" => false,
        other => return Err(format!("fortran_order is {other}")),
    };
    let shape = parse_shape(dict_value(header, "shape")?)?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or("shape overflows")?;
    let needed = count.checked_mul(elem).ok_or("shape overflows")?;
    let body = &bytes[start + header_len..];
    if body.len() != needed {
        return Err(format!(
            "shape {shape:?} needs {needed} bytes of data, the file holds {}",
            body.len()
        ));
    }
    let values: Vec<f64> = if elem == 4 {
        body.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
            .collect()
    } else {
        body.chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("chunk of 8")))
            .collect()
    };
    if !fortran || shape.len() < 2 {
        return Ok((shape, values));
    }
    // Fortran order: the first index varies fastest.
    let mut data = vec![0.0; count];
    let mut index = vec![0usize; shape.len()];
    for value in values {
        let at = index.iter().zip(&shape).fold(0, |a, (&i, &d)| a * d + i);
        data[at] = value;
        for (i, &d) in index.iter_mut().zip(&shape) {
            *i += 1;
            if *i < d {
                break;
            }
            *i = 0;
        }
    }
    Ok((shape, data))
}

/// Reads a float32/float64 `.npy` of any rank: its shape and its values in C order.
pub fn read_npy(path: &Path) -> Result<(Vec<usize>, Vec<f32>), MatrixError> {
    let bytes = fs::read(path).map_err(|source| MatrixError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let (shape, values) = parse_npy_array(&bytes).map_err(|message| MatrixError::Format {
        path: path.to_path_buf(),
        message,
    })?;
    Ok((shape, values.into_iter().map(|v| v as f32).collect()))
}

/// Parses a 2-D (or 1-D, read as one column) float32/float64 `.npy`.
fn parse_npy(bytes: &[u8]) -> Result<HostMatrix, String> {
    let (shape, data) = parse_npy_array(bytes)?;
    let (rows, cols) = match shape.as_slice() {
        [r] => (*r, 1),
        [r, c] => (*r, *c),
        s => return Err(format!("shape {s:?} is not a matrix (1 or 2 dimensions)")),
    };
    Ok(HostMatrix { rows, cols, data })
}

/// The text after `'key':` in a Python dict literal, up to the next top-level comma.
fn dict_value<'a>(header: &'a str, key: &str) -> Result<&'a str, String> {
    let needle = format!("'{key}':");
    let at = header
        .find(&needle)
        .ok_or_else(|| format!("header has no '{key}'"))?;
    let rest = header[at + needle.len()..].trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')').map(|i| i + 1)
    } else {
        rest.find([',', '}'])
    }
    .ok_or_else(|| format!("header value of '{key}' is not terminated"))?;
    Ok(&rest[..end])
}

fn parse_shape(text: &str) -> Result<Vec<usize>, String> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| format!("shape {text} is not a tuple"))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| format!("shape entry {s} is not a size"))
        })
        .collect()
}

/// Parses CSV rows of numbers; a first line that is not numeric is taken as a header.
fn parse_csv(text: &str) -> Result<HostMatrix, String> {
    let mut data = Vec::new();
    let mut cols = None;
    let mut rows = 0;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let parsed: Result<Vec<f64>, _> =
            line.split(',').map(|f| f.trim().parse::<f64>()).collect();
        let values = match parsed {
            Ok(v) => v,
            Err(_) if rows == 0 && cols.is_none() => continue, // header line
            Err(e) => return Err(format!("line {}: {e}", index + 1)),
        };
        match cols {
            None => cols = Some(values.len()),
            Some(c) if c != values.len() => {
                return Err(format!(
                    "line {} has {} fields, earlier rows have {c}",
                    index + 1,
                    values.len()
                ));
            }
            Some(_) => {}
        }
        data.extend(values);
        rows += 1;
    }
    let cols = cols.ok_or("no numeric rows")?;
    Ok(HostMatrix { rows, cols, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trips_in_both_precisions() {
        let dir = tempfile::tempdir().unwrap();
        let m = HostMatrix::new(2, 3, vec![1.0, 2.5, -3.0, 4.0, 5.0, 6.25]).unwrap();
        let p64 = dir.path().join("a.npy");
        write_npy_f64(&p64, &m).unwrap();
        assert_eq!(read_matrix(&p64).unwrap(), m);
        let p32 = dir.path().join("b.npy");
        write_npy_f32(&p32, &[2, 3], &m.to_f32()).unwrap();
        assert_eq!(read_matrix(&p32).unwrap(), m);
        // Data starts on a 64-byte boundary, as NumPy writes it.
        let header_len = u16::from_le_bytes(fs::read(&p32).unwrap()[8..10].try_into().unwrap());
        assert_eq!((10 + header_len as usize) % 64, 0);
    }

    #[test]
    fn fortran_order_is_transposed_back() {
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        let dict = "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }\n";
        bytes.extend((dict.len() as u16).to_le_bytes());
        bytes.extend(dict.as_bytes());
        for v in [1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0] {
            bytes.extend(v.to_le_bytes());
        }
        let m = parse_npy(&bytes).unwrap();
        assert_eq!(m.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn arrays_of_any_rank_read_in_c_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npy");
        let values: Vec<f32> = (0..24).map(|v| v as f32).collect();
        write_npy_f32(&p, &[1, 2, 3, 4], &values).unwrap();
        assert_eq!(read_npy(&p).unwrap(), (vec![1, 2, 3, 4], values));
        // Fortran order, shape (2, 3, 2): element [i, j, k] stored at i + 2j + 6k.
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        let dict = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3, 2), }\n";
        bytes.extend((dict.len() as u16).to_le_bytes());
        bytes.extend(dict.as_bytes());
        let mut stored = [0f32; 12];
        for i in 0..2 {
            for j in 0..3 {
                for k in 0..2 {
                    stored[i + 2 * j + 6 * k] = (i * 6 + j * 2 + k) as f32;
                }
            }
        }
        for v in stored {
            bytes.extend(v.to_le_bytes());
        }
        let (shape, data) = parse_npy_array(&bytes).unwrap();
        assert_eq!(shape, vec![2, 3, 2]);
        assert_eq!(data, (0..12).map(f64::from).collect::<Vec<_>>());
    }

    #[test]
    fn truncated_and_foreign_npy_files_are_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        write_npy_f32(&p, &[4, 4], &[0.5; 16]).unwrap();
        let bytes = fs::read(&p).unwrap();
        fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
        let err = read_matrix(&p).unwrap_err().to_string();
        assert!(err.contains("needs 64 bytes"), "{err}");
        fs::write(&p, b"PK\x03\x04 not numpy").unwrap();
        assert!(read_matrix(&p).unwrap_err().to_string().contains("magic"));
        let int_header = npy_header("<i8", &[1, 1]);
        assert!(parse_npy(&int_header).unwrap_err().contains("<i8"));
    }

    #[test]
    fn csv_with_header_and_ragged_rows() {
        let m = parse_csv("a,b\n1, 2\n3,4.5\n\n").unwrap();
        assert_eq!((m.rows, m.cols, m.data), (2, 2, vec![1.0, 2.0, 3.0, 4.5]));
        let err = parse_csv("1,2\n3\n").unwrap_err();
        assert!(err.contains("line 2 has 1 fields"), "{err}");
        assert!(parse_csv("1,2\n3,x\n").unwrap_err().contains("line 2"));
        assert!(parse_csv("").unwrap_err().contains("no numeric rows"));
    }
}
