//! `calculator`: arithmetic tools for the model. Pure functions, no I/O.
//!
//! Tools:
//! - `add` `{ "numbers": [number, ...] }` → the sum
//! - `multiply` `{ "numbers": [number, ...] }` → the product
//! - `evaluate` `{ "expression": "2 * (3 + 4) ^ 2" }` → the value of an
//!   expression with `+ - * / % ^`, parentheses, unary minus and decimals

use guest_sdk::{CallContext, Entry, Plugin, ToolDefinition, Value, export_plugin, json};

struct Calculator;

impl Plugin for Calculator {
    fn entries() -> Vec<Entry> {
        vec![
            Entry::tool("add", "adds a list of numbers"),
            Entry::tool("multiply", "multiplies a list of numbers"),
            Entry::tool("evaluate", "evaluates an arithmetic expression"),
        ]
    }

    fn tool_definitions() -> Vec<ToolDefinition> {
        let numbers = json!({
            "type": "object",
            "properties": {
                "numbers": {"type": "array", "items": {"type": "number"}, "minItems": 1, "description": "the operands"}
            },
            "required": ["numbers"],
            "additionalProperties": false
        });
        vec![
            ToolDefinition {
                name: "add".into(),
                description: "Add numbers and return the sum.".into(),
                parameters: numbers.clone(),
            },
            ToolDefinition {
                name: "multiply".into(),
                description: "Multiply numbers and return the product.".into(),
                parameters: numbers,
            },
            ToolDefinition {
                name: "evaluate".into(),
                description: "Evaluate an arithmetic expression with + - * / % ^ and parentheses."
                    .into(),
                parameters: json!({
                    "type": "object",
                    "properties": {"expression": {"type": "string", "description": "for example 2 * (3 + 4)"}},
                    "required": ["expression"],
                    "additionalProperties": false
                }),
            },
        ]
    }

    fn invoke_tool(_ctx: &CallContext, name: &str, arguments: &Value) -> Result<Value, String> {
        let result = match name {
            "add" => numbers(arguments)?.iter().sum(),
            "multiply" => numbers(arguments)?.iter().product(),
            "evaluate" => {
                let expr = arguments
                    .get("expression")
                    .and_then(Value::as_str)
                    .ok_or("evaluate: `expression` must be a string")?;
                Parser::new(expr).parse()?
            }
            other => return Err(format!("calculator has no tool `{other}`")),
        };
        if !result.is_finite() {
            return Err(format!("{name}: result is not a finite number"));
        }
        Ok(number(result))
    }
}

fn numbers(arguments: &Value) -> Result<Vec<f64>, String> {
    let items = arguments
        .get("numbers")
        .and_then(Value::as_array)
        .ok_or("`numbers` must be an array of numbers")?;
    items
        .iter()
        .map(|v| v.as_f64().ok_or_else(|| format!("`{v}` is not a number")))
        .collect()
}

/// Integers come back as JSON integers (`6`, not `6.0`).
fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::from(x as i64)
    } else {
        Value::from(x)
    }
}

/// Recursive-descent parser; depth-limited so a hostile expression cannot
/// exhaust the stack.
struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
    depth: u32,
}

const MAX_DEPTH: u32 = 64;

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        Parser {
            src: src.as_bytes(),
            pos: 0,
            depth: 0,
        }
    }

    fn parse(mut self) -> Result<f64, String> {
        let v = self.expr()?;
        self.ws();
        if self.pos != self.src.len() {
            return Err(format!(
                "evaluate: unexpected `{}` at position {}",
                self.src[self.pos] as char, self.pos
            ));
        }
        Ok(v)
    }

    fn ws(&mut self) {
        while self.pos < self.src.len() && self.src[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.src.get(self.pos).copied()
    }

    fn expr(&mut self) -> Result<f64, String> {
        let mut v = self.term()?;
        while let Some(op @ (b'+' | b'-')) = self.peek() {
            self.pos += 1;
            let rhs = self.term()?;
            v = if op == b'+' { v + rhs } else { v - rhs };
        }
        Ok(v)
    }

    fn term(&mut self) -> Result<f64, String> {
        let mut v = self.power()?;
        while let Some(op @ (b'*' | b'/' | b'%')) = self.peek() {
            self.pos += 1;
            let rhs = self.power()?;
            v = match op {
                b'*' => v * rhs,
                _ if rhs == 0.0 => return Err("evaluate: division by zero".into()),
                b'/' => v / rhs,
                _ => v % rhs,
            };
        }
        Ok(v)
    }

    fn power(&mut self) -> Result<f64, String> {
        let base = self.unary()?;
        if self.peek() == Some(b'^') {
            self.pos += 1;
            let exp = self.power()?; // right-associative
            return Ok(base.powf(exp));
        }
        Ok(base)
    }

    fn unary(&mut self) -> Result<f64, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err("evaluate: expression nested too deeply".into());
        }
        let v = match self.peek() {
            Some(b'-') => {
                self.pos += 1;
                -self.unary()?
            }
            Some(b'+') => {
                self.pos += 1;
                self.unary()?
            }
            Some(b'(') => {
                self.pos += 1;
                let v = self.expr()?;
                if self.peek() != Some(b')') {
                    return Err(format!("evaluate: expected `)` at position {}", self.pos));
                }
                self.pos += 1;
                v
            }
            Some(c) if c.is_ascii_digit() || c == b'.' => {
                let start = self.pos;
                while self.pos < self.src.len()
                    && (self.src[self.pos].is_ascii_digit() || self.src[self.pos] == b'.')
                {
                    self.pos += 1;
                }
                let text =
                    std::str::from_utf8(&self.src[start..self.pos]).map_err(|e| e.to_string())?;
                text.parse::<f64>()
                    .map_err(|_| format!("evaluate: `{text}` is not a number"))?
            }
            Some(c) => {
                return Err(format!(
                    "evaluate: unexpected `{}` at position {}",
                    c as char, self.pos
                ));
            }
            None => return Err("evaluate: unexpected end of expression".into()),
        };
        self.depth -= 1;
        Ok(v)
    }
}

export_plugin!(Calculator);
