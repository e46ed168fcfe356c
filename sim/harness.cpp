// hwgen's compiled stream harness: a C++ testbench for a design behind the AXI4-Stream shell
// (hwgen.export.axis), built with Verilator by sim.harness. See sim/harness.py for the file
// formats; this file is generic, and the generated header "hwgen_ports.h" names the top
// level's stream interfaces:
//
//   #define HWGEN_TOP Vharness
//   #define HWGEN_INPUTS(X)  X(s_axis)
//   #define HWGEN_OUTPUTS(X) X(m_axis)
//
// Cycle numbering and checks are those of the cocotb testbench sim.stream_tb: reset is held
// for 4 cycles; cycle 0 is the first rising edge after its release; the producers and
// consumers drive from cycle 1. A handshake "at cycle k" is valid & ready sampled high just
// before rising edge k. Each input offers its next beat in a cycle with probability
// valid_prob and holds it until taken; each output is ready in a cycle with probability
// ready_prob; every port has its own seeded generator.
//
// Exit status: 0 passed, 1 a check failed (the report says which), 2 bad usage or files.

#include "hwgen_ports.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "verilated.h"
#ifdef HWGEN_TRACE_FST
#include "verilated_fst_c.h"
#endif
#ifdef HWGEN_TRACE_VCD
#include "verilated_vcd_c.h"
#endif

namespace {

// --- ports of any width --------------------------------------------------------------------

template <typename T> int words_of(const T&) { return sizeof(T) > 4 ? 2 : 1; }
template <std::size_t N> int words_of(const VlWide<N>&) { return static_cast<int>(N); }

template <typename T> void put(T& port, const uint32_t* w) {
    uint64_t v = w[0];
    if (sizeof(T) > 4) v |= static_cast<uint64_t>(w[1]) << 32;
    port = static_cast<T>(v);
}
template <std::size_t N> void put(VlWide<N>& port, const uint32_t* w) {
    for (std::size_t i = 0; i < N; ++i) port[i] = w[i];
}
template <typename T> void get(const T& port, uint32_t* w) {
    uint64_t v = static_cast<uint64_t>(port);
    w[0] = static_cast<uint32_t>(v);
    if (sizeof(T) > 4) w[1] = static_cast<uint32_t>(v >> 32);
}
template <std::size_t N> void get(const VlWide<N>& port, uint32_t* w) {
    for (std::size_t i = 0; i < N; ++i) w[i] = port[i];
}

std::string hex(const uint32_t* w, int nw) {
    int top = nw - 1;
    while (top > 0 && w[top] == 0) --top;
    char buf[16];
    std::string s = "0x";
    std::snprintf(buf, sizeof buf, "%x", w[top]);
    s += buf;
    for (int i = top - 1; i >= 0; --i) {
        std::snprintf(buf, sizeof buf, "%08x", w[i]);
        s += buf;
    }
    return s;
}

// --- seeded random numbers (splitmix64: small, fast, the same on every platform) -----------

struct Rng {
    uint64_t state;
    explicit Rng(uint64_t seed) : state(seed) {}
    uint64_t next() {
        uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
    bool chance(double p) { return p >= 1.0 || uniform() < p; }
};

uint64_t stream_seed(uint64_t seed, const std::string& name, int kind) {
    uint64_t h = 1469598103934665603ULL ^ (seed * 0x100000001b3ULL) ^ static_cast<uint64_t>(kind);
    for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    Rng mix(h);
    return mix.next();
}

// --- configuration and files ----------------------------------------------------------------

std::map<std::string, std::string> read_config(const std::string& path) {
    std::map<std::string, std::string> config;
    std::ifstream f(path);
    if (!f) {
        std::fprintf(stderr, "hwgen harness: cannot read %s\n", path.c_str());
        std::exit(2);
    }
    std::string line;
    while (std::getline(f, line)) {
        auto eq = line.find('=');
        if (eq != std::string::npos) config[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return config;
}

std::string need(const std::map<std::string, std::string>& config, const std::string& key) {
    auto it = config.find(key);
    if (it == config.end()) {
        std::fprintf(stderr, "hwgen harness: the configuration has no %s\n", key.c_str());
        std::exit(2);
    }
    return it->second;
}

std::vector<uint32_t> read_words(const std::string& path, int nw, const std::string& what) {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    if (!f) {
        std::fprintf(stderr, "hwgen harness: cannot read %s\n", path.c_str());
        std::exit(2);
    }
    std::streamsize size = f.tellg();
    if (size % (4 * nw) != 0) {
        std::fprintf(stderr, "hwgen harness: %s (%s) holds %lld bytes, not a whole number of "
                     "%d-word beats\n", path.c_str(), what.c_str(),
                     static_cast<long long>(size), nw);
        std::exit(2);
    }
    std::vector<uint32_t> words(static_cast<std::size_t>(size / 4));
    f.seekg(0);
    f.read(reinterpret_cast<char*>(words.data()), size);
    return words;
}

void write_cycles(const std::string& path, const std::vector<int64_t>& cycles) {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(cycles.data()),
            static_cast<std::streamsize>(cycles.size() * sizeof(int64_t)));
}

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') { out += '\\'; out += c; }
        else if (c == '\n') out += "\\n";
        else if (static_cast<unsigned char>(c) < 0x20) out += ' ';
        else out += c;
    }
    return out + "\"";
}

// --- streams -------------------------------------------------------------------------------

struct Input {
    std::string name;
    int nw = 1;
    std::vector<uint32_t> words;
    std::size_t beats = 0, next = 0;
    bool offered = false, taken = false;
    double prob = 1.0;
    std::unique_ptr<Rng> rng;
    std::vector<int64_t> cycles;
    std::function<void(const uint32_t*)> set_data;
    std::function<void(bool)> set_valid;
    std::function<bool()> ready;
};

struct Output {
    std::string name;
    int nw = 1;
    std::vector<uint32_t> expected;
    std::size_t beats = 0, frame_len = 1;
    double prob = 1.0;
    bool ready_now = false;
    std::unique_ptr<Rng> rng;
    std::vector<int64_t> cycles;
    bool pending = false;
    int64_t pending_cycle = 0;
    std::vector<uint32_t> pending_data, seen;
    std::function<void(uint32_t*)> get_data;
    std::function<bool()> valid;
    std::function<bool()> last;
    std::function<void(bool)> set_ready;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s CONFIG [verilator +args]\n", argv[0]);
        return 2;
    }
    auto config = read_config(argv[1]);
    const std::string dir = need(config, "dir");
    const uint64_t seed = std::strtoull(need(config, "seed").c_str(), nullptr, 10);
    const int64_t max_cycles = std::strtoll(need(config, "max_cycles").c_str(), nullptr, 10);
    const int64_t drain_cycles = std::strtoll(need(config, "drain_cycles").c_str(), nullptr, 10);
    const double progress_s = std::atof(need(config, "progress_seconds").c_str());
    const std::string waves = config.count("waves") ? config["waves"] : "";
    const int64_t waves_from = config.count("waves_from") ?
        std::strtoll(config["waves_from"].c_str(), nullptr, 10) : 0;

    auto context = std::make_unique<VerilatedContext>();
    context->commandArgs(argc - 1, argv + 1);
    auto top = std::make_unique<HWGEN_TOP>(context.get());
    HWGEN_TOP* dut = top.get();

    std::vector<Input> inputs;
    std::vector<Output> outputs;
#define HWGEN_ADD_INPUT(P)                                                                     \
    {                                                                                          \
        Input s;                                                                               \
        s.name = #P;                                                                           \
        s.nw = words_of(dut->P##_tdata);                                                       \
        s.set_data = [dut](const uint32_t* w) { put(dut->P##_tdata, w); };                      \
        s.set_valid = [dut](bool v) { dut->P##_tvalid = v; };                                  \
        s.ready = [dut]() { return dut->P##_tready != 0; };                                    \
        inputs.push_back(std::move(s));                                                        \
    }
#define HWGEN_ADD_OUTPUT(P)                                                                    \
    {                                                                                          \
        Output s;                                                                              \
        s.name = #P;                                                                           \
        s.nw = words_of(dut->P##_tdata);                                                       \
        s.get_data = [dut](uint32_t* w) { get(dut->P##_tdata, w); };                            \
        s.valid = [dut]() { return dut->P##_tvalid != 0; };                                    \
        s.last = [dut]() { return dut->P##_tlast != 0; };                                      \
        s.set_ready = [dut](bool r) { dut->P##_tready = r; };                                  \
        outputs.push_back(std::move(s));                                                       \
    }
    HWGEN_INPUTS(HWGEN_ADD_INPUT)
    HWGEN_OUTPUTS(HWGEN_ADD_OUTPUT)

    for (auto& s : inputs) {
        s.words = read_words(dir + "/" + s.name + ".in", s.nw, "input beats");
        s.beats = s.words.size() / s.nw;
        s.prob = std::atof(need(config, "valid_prob." + s.name).c_str());
        s.rng = std::make_unique<Rng>(stream_seed(seed, s.name, 1));
    }
    std::size_t expected_total = 0, received_total = 0;
    for (auto& s : outputs) {
        s.expected = read_words(dir + "/" + s.name + ".expected", s.nw, "expected beats");
        s.beats = s.expected.size() / s.nw;
        s.frame_len = std::strtoull(need(config, "frame_len." + s.name).c_str(), nullptr, 10);
        s.prob = std::atof(need(config, "ready_prob." + s.name).c_str());
        s.rng = std::make_unique<Rng>(stream_seed(seed, s.name, 2));
        s.pending_data.assign(s.nw, 0);
        s.seen.assign(s.nw, 0);
        expected_total += s.beats;
    }
    const bool one_output = outputs.size() == 1;

#if defined(HWGEN_TRACE_FST) || defined(HWGEN_TRACE_VCD)
#ifdef HWGEN_TRACE_FST
    std::unique_ptr<VerilatedFstC> trace;
#else
    std::unique_ptr<VerilatedVcdC> trace;
#endif
    if (!waves.empty()) {
        context->traceEverOn(true);
        trace.reset(new typename decltype(trace)::element_type);
        dut->trace(trace.get(), 99);
        trace->open(waves.c_str());
    }
#endif
    uint64_t time = 0;
    auto tick = [&](int clk, int64_t cycle) {
        dut->ap_clk = clk;
        dut->eval();
        time += 5;
        context->time(time);
#if defined(HWGEN_TRACE_FST) || defined(HWGEN_TRACE_VCD)
        if (trace && cycle >= waves_from) trace->dump(time);
#else
        (void)cycle;
#endif
    };

    // reset: the design sees 4 cycles of it, every valid and ready low. ap_rst_n reaches it
    // through a register (sim/harness.py, _reset_wrapper), so it is released an edge early.
    dut->ap_rst_n = 0;
    for (auto& s : inputs) s.set_valid(false);
    for (auto& s : outputs) s.set_ready(false);
    for (int k = 0; k < 4; ++k) {
        if (k == 3) dut->ap_rst_n = 1;
        tick(0, -1);
        tick(1, -1);
    }

    std::string error;
    int64_t cycle = 0, end = -1;
    auto started = std::chrono::steady_clock::now();
    auto last_progress = started;
    std::string mismatch = "null";   // the first wrong beat: stream, beat, cycle, seen word
    auto fail = [&](const std::string& message) { if (error.empty()) error = message; };
    std::vector<uint32_t> data;

    while (error.empty() && (end < 0 || cycle <= end)) {
        tick(0, cycle);
        // sample just before rising edge `cycle`
        for (auto& s : inputs) {
            s.taken = s.offered && s.ready();
            if (s.taken) s.cycles.push_back(cycle);
        }
        for (auto& s : outputs) {
            std::size_t n = s.cycles.size();
            std::string where = one_output ? "output beat " : s.name + " output beat ";
            if (s.valid()) {
                s.get_data(s.seen.data());
                if (s.pending && s.seen != s.pending_data) {
                    std::ostringstream m;
                    m << where << n << ": " << s.name << "_tdata changed from "
                      << hex(s.pending_data.data(), s.nw) << " to " << hex(s.seen.data(), s.nw)
                      << " at cycle " << cycle << " while " << s.name << "_tvalid was high and "
                      << s.name << "_tready low (offered at cycle " << s.pending_cycle << ")";
                    fail(m.str());
                    break;
                }
                if (s.ready_now) {
                    if (n >= s.beats) {
                        std::ostringstream m;
                        m << "unexpected " << where << n << " at cycle " << cycle << ": "
                          << hex(s.seen.data(), s.nw) << " (expected only " << s.beats
                          << " beats)";
                        fail(m.str());
                        break;
                    }
                    const uint32_t* want = s.expected.data() + n * s.nw;
                    if (std::memcmp(want, s.seen.data(), 4 * s.nw) != 0) {
                        std::ostringstream m;
                        m << where << n << " (frame " << n / s.frame_len << ", beat "
                          << n % s.frame_len << " of the frame, cycle " << cycle
                          << "): expected " << hex(want, s.nw) << ", seen "
                          << hex(s.seen.data(), s.nw);
                        fail(m.str());
                        mismatch = "{\"stream\": " + json_string(s.name) + ", \"beat\": " +
                                   std::to_string(n) + ", \"cycle\": " +
                                   std::to_string(cycle) + ", \"seen\": " +
                                   json_string(hex(s.seen.data(), s.nw)) + "}";
                        break;
                    }
                    bool want_last = (n + 1) % s.frame_len == 0;
                    if (s.last() != want_last) {
                        std::ostringstream m;
                        m << where << n << " (frame " << n / s.frame_len << ", beat "
                          << n % s.frame_len << " of the frame, cycle " << cycle << "): "
                          << s.name << "_tlast=" << (s.last() ? 1 : 0) << ", expected "
                          << (want_last ? 1 : 0) << " (frame length " << s.frame_len
                          << " beats)";
                        fail(m.str());
                        break;
                    }
                    s.cycles.push_back(cycle);
                    s.pending = false;
                    ++received_total;
                } else if (!s.pending) {
                    s.pending = true;
                    s.pending_cycle = cycle;
                    s.pending_data = s.seen;
                }
            } else if (s.pending) {
                std::ostringstream m;
                m << where << n << ": " << s.name << "_tvalid withdrawn at cycle " << cycle
                  << " before the beat offered at cycle " << s.pending_cycle
                  << " was accepted";
                fail(m.str());
                break;
            }
        }
        if (!error.empty()) break;
        if (end < 0 && received_total == expected_total) {
            // every output is in: drain once every input beat has been taken too (the tail
            // of a frame may not be needed for its outputs, e.g. past a strided window)
            bool inputs_done = true;
            for (auto& s : inputs) inputs_done = inputs_done && s.next + s.taken >= s.beats;
            if (inputs_done) end = cycle + drain_cycles;
        }
        tick(1, cycle);
        // drive for the next cycle
        for (auto& s : inputs) {
            if (s.taken) {
                ++s.next;
                s.offered = false;
            }
            if (!s.offered && s.next < s.beats) {
                s.offered = s.rng->chance(s.prob);
                if (s.offered) s.set_data(s.words.data() + s.next * s.nw);
            }
            s.set_valid(s.offered);
        }
        for (auto& s : outputs) {
            s.ready_now = end >= 0 || s.rng->chance(s.prob);   // always ready while draining
            s.set_ready(s.ready_now);
        }
        ++cycle;
        if (end < 0 && cycle > max_cycles) {
            std::ostringstream m;
            std::size_t in_taken = 0, in_total = 0;
            for (auto& s : inputs) { in_taken += s.cycles.size(); in_total += s.beats; }
            m << "timeout after " << max_cycles << " cycles: received " << received_total
              << " of " << expected_total << " output beats, " << in_taken << " of "
              << in_total << " input beats accepted";
            fail(m.str());
        }
        if ((cycle & 0x3fff) == 0 && progress_s > 0) {
            auto now = std::chrono::steady_clock::now();
            if (std::chrono::duration<double>(now - last_progress).count() >= progress_s) {
                last_progress = now;
                std::fprintf(stderr, "hwgen-progress %lld %zu %zu %.3f\n",
                             static_cast<long long>(cycle), received_total, expected_total,
                             std::chrono::duration<double>(now - started).count());
                std::fflush(stderr);
            }
        }
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
                         .count();
#if defined(HWGEN_TRACE_FST) || defined(HWGEN_TRACE_VCD)
    if (trace) trace->close();
#endif
    dut->final();

    // report: counts here, handshake cycles as int64 files (NAME.cycles)
    std::ostringstream r;
    r << "{\"passed\": " << (error.empty() ? "true" : "false")
      << ", \"error\": " << (error.empty() ? "null" : json_string(error))
      << ", \"mismatch\": " << mismatch
      << ", \"simulated_cycles\": " << cycle << ", \"sim_seconds\": " << seconds
      << ", \"streams\": {";
    bool first = true;
    for (auto& s : inputs) {
        write_cycles(dir + "/" + s.name + ".cycles", s.cycles);
        r << (first ? "" : ", ") << json_string(s.name) << ": {\"beats\": " << s.cycles.size()
          << ", \"offered\": " << s.beats << "}";
        first = false;
    }
    for (auto& s : outputs) {
        write_cycles(dir + "/" + s.name + ".cycles", s.cycles);
        r << ", " << json_string(s.name) << ": {\"beats\": " << s.cycles.size()
          << ", \"expected\": " << s.beats << "}";
    }
    r << "}}\n";
    std::ofstream(dir + "/result.json") << r.str();
    return error.empty() ? 0 : 1;
}
