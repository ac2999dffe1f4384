// Entry points for int8 x int8 Linear and half-precision weights: argument checks, kernel
// choice, scratch buffers and threading.
#include "wattwise/quant/dynamic_int8.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "../common/entry.h"
#include "half_formats.h"
#include "wattwise/common/cpu.h"
#include "wattwise/common/thread_pool.h"
#include "wattwise/quant/weight_only.h"

namespace wattwise::quant {

using detail::check_dims;
using detail::check_ptr;
using detail::row_grain;
using detail::use_avx2;

namespace {

// Output channels per chunk for the product: a multiple of the 8-row tiles, and enough
// chunks for every thread (threads scale by splitting channels; each reads its own weights).
int64_t gemm_grain(int64_t m, int64_t k, int64_t n) {
  int64_t g = row_grain(k * std::max<int64_t>(m, 1));
  const int64_t threads = get_num_threads();
  if (threads > 1) g = std::min(g, std::max<int64_t>(8, n / (4 * threads)));
  return (g + 7) / 8 * 8;
}

// The packed GEMMs (VNNI and AVX2) pack their weights on every call, a transposing pass
// over them; below this many activation rows the row-major kernels, which read the weights as
// they are, are faster. Weights too large for the caches make the packing pass slower, hence
// the higher bar (measured on a Zen 5: crossovers near 8 rows for 384 x 1536 weights and 20
// rows for 4096 x 4096, at both levels).
int64_t packed_min_rows(int64_t n, int64_t k) { return n * k >= (int64_t{4} << 20) ? 24 : 8; }

#ifdef WATTWISE_HAVE_AVX2_KERNELS
// Activations packed in register tiles (kernels::int8_pack_rows_vnni), row sums and scales.
struct PackedRows {
  std::vector<int32_t> a;
  std::vector<int32_t> a_abs;  // AVX2 only
  std::vector<int32_t> xsum;   // VNNI only
  std::vector<float> xscales;
  int64_t tiles;
  PackedRows(int64_t m, int64_t k, bool vnni)
      : a(static_cast<size_t>((m + kernels::kVnniRows - 1) / kernels::kVnniRows *
                              kernels::kVnniRows * ((k + 3) / 4))),
        a_abs(vnni ? 0 : a.size()),
        xsum(static_cast<size_t>(vnni ? m : 0)),
        xscales(static_cast<size_t>(m)),
        tiles((m + kernels::kVnniRows - 1) / kernels::kVnniRows) {}
};

// Threads over register tiles of packed rows: body(row_begin, row_end).
template <typename Body>
void for_row_tiles(int64_t m, int64_t k, const Body& body) {
  using kernels::kVnniRows;
  parallel_for((m + kVnniRows - 1) / kVnniRows, row_grain(kVnniRows * k, 1 << 16, 1),
               [&](int64_t b, int64_t e) { body(b * kVnniRows, std::min(m, e * kVnniRows)); });
}

// A packed GEMM over a grid of (row block, channel block) tasks. Channel blocks are whole
// 32-channel panels; row blocks (whole 12-row tiles) are only cut when there are too few
// channel blocks to keep every thread busy, and never below 64 rows, because each task packs
// its own weights.
void run_packed_gemm(const kernels::Int8Gemm& p, const PackedRows& rows, bool vnni) {
  using kernels::kVnniRows;
  if (p.m == 0 || p.n == 0) return;  // (the grid below divides by its chunk counts)
  const int64_t threads = get_num_threads();
  const int64_t panels = (p.n + 31) / 32;
  const int64_t chunk_panels =
      std::clamp<int64_t>((panels + 4 * threads - 1) / (4 * threads), 1, 8);
  const int64_t n_chunks = (panels + chunk_panels - 1) / chunk_panels;
  const int64_t m_chunks = std::clamp<int64_t>((8 * threads + n_chunks - 1) / n_chunks, 1,
                                               std::max<int64_t>(1, p.m / 64));
  const int64_t tiles_per_chunk = (rows.tiles + m_chunks - 1) / m_chunks;
  // One chunk per task when threads can share them; a lone thread takes them all at once.
  const int64_t grain = threads > 1 ? 1 : n_chunks * m_chunks;
  parallel_for(n_chunks * m_chunks, grain, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t r0 = (t / n_chunks) * tiles_per_chunk * kVnniRows;
      const int64_t r1 = std::min(p.m, r0 + tiles_per_chunk * kVnniRows);
      const int64_t c0 = (t % n_chunks) * chunk_panels * 32;
      const int64_t c1 = std::min(p.n, c0 + chunk_panels * 32);
#ifdef WATTWISE_HAVE_AVX512_KERNELS
      if (vnni) {
        kernels::int8_gemm_avx512vnni_packed(p, rows.a.data(), rows.xsum.data(), r0, r1, c0, c1);
        continue;
      }
#endif
      kernels::int8_gemm_avx2_packed(p, rows.a.data(), rows.a_abs.data(), r0, r1, c0, c1);
    }
  });
}
#endif

void run_gemm(const kernels::Int8Gemm& p) {
#ifdef WATTWISE_HAVE_AVX2_KERNELS
  const bool vnni = detail::use_avx512vnni();
  const bool packed = p.m >= packed_min_rows(p.n, p.k);
#ifdef WATTWISE_HAVE_AVX512_KERNELS
  if (vnni && !packed) {
    std::vector<int32_t> xsum(static_cast<size_t>(p.m));
    int8_row_sums(p.xq, p.m, p.k, xsum.data());
    parallel_for(p.n, gemm_grain(p.m, p.k, p.n), [&](int64_t b, int64_t e) {
      kernels::int8_gemv_avx512vnni(p, xsum.data(), b, e);
    });
    return;
  }
#endif
  if (use_avx2() && packed) {
    PackedRows rows(p.m, p.k, vnni);
    for_row_tiles(p.m, p.k, [&](int64_t b, int64_t e) {
#ifdef WATTWISE_HAVE_AVX512_KERNELS
      if (vnni) {
        kernels::int8_pack_rows_vnni(p.xq, p.m, p.k, b, e, rows.a.data(), rows.xsum.data());
        return;
      }
#endif
      kernels::int8_pack_rows_avx2(p.xq, p.m, p.k, b, e, rows.a.data(), rows.a_abs.data());
    });
    run_packed_gemm(p, rows, vnni);
    return;
  }
#endif
  const bool avx2 = use_avx2();
  parallel_for(p.n, gemm_grain(p.m, p.k, p.n), [&](int64_t b, int64_t e) {
    WATTWISE_PICK(avx2, kernels::int8_gemm_avx2(p, b, e), kernels::int8_gemm_ref(p, b, e));
  });
}

}  // namespace

void int8_dynamic_linear(const float* x, int64_t m, int64_t k, const int8_t* q, const float* scales,
                         const float* bias, int64_t n, float* y) {
  const char* fn = "int8_dynamic_linear";
  check_dims(fn, n, k, m);
  check_ptr(fn, "x", x, m * k);
  check_ptr(fn, "q", q, n * k);
  check_ptr(fn, "scales", scales, n);
  check_ptr(fn, "y", y, m * n);
#ifdef WATTWISE_HAVE_AVX512_KERNELS
  if (detail::use_avx512vnni() && m >= packed_min_rows(n, k)) {
    // Quantized straight into the packed layout: the int8 rows are never written row-major.
    PackedRows rows(m, k, true);
    for_row_tiles(m, k, [&](int64_t b, int64_t e) {
      kernels::int8_quantize_rows_vnni(x, m, k, b, e, rows.a.data(), rows.xsum.data(),
                                       rows.xscales.data());
    });
    run_packed_gemm({nullptr, rows.xscales.data(), nullptr, m, k, q, scales, nullptr, bias, n, y},
                    rows, true);
    return;
  }
#endif
  std::vector<int8_t> xq(static_cast<size_t>(m * k));
  std::vector<float> xs(static_cast<size_t>(m));
  const bool avx2 = use_avx2();
  // Per-token symmetric quantization is the per-channel weight quantizer applied to rows.
  parallel_for(m, row_grain(k), [&](int64_t b, int64_t e) {
    WATTWISE_PICK(avx2, kernels::int8_quantize_avx2(x, k, b, e, xq.data(), xs.data()),
                  kernels::int8_quantize_ref(x, k, b, e, xq.data(), xs.data()));
  });
  run_gemm({xq.data(), xs.data(), nullptr, m, k, q, scales, nullptr, bias, n, y});
}

void check_static_qparams(float x_scale, int64_t zero_point, int64_t quant_min, int64_t quant_max) {
  if (!(x_scale > 0.f) || !std::isfinite(x_scale)) {
    throw std::invalid_argument("activation scale must be finite and > 0, got " +
                                std::to_string(x_scale));
  }
  const bool qint8 = quant_min >= -128 && quant_max <= 127;
  const bool quint8 = quant_min >= 0 && quant_max <= 255;
  if (quant_min >= quant_max || !(qint8 || quint8)) {
    throw std::invalid_argument(
        "quant_min/quant_max must lie within [-128, 127] or [0, 255] with quant_min < "
        "quant_max, got [" +
        std::to_string(quant_min) + ", " + std::to_string(quant_max) + "]");
  }
  if (zero_point < quant_min || zero_point > quant_max) {
    throw std::invalid_argument("zero_point must lie in [quant_min, quant_max] = [" +
                                std::to_string(quant_min) + ", " + std::to_string(quant_max) +
                                "], got " + std::to_string(zero_point));
  }
}

void int8_static_linear(const float* x, int64_t m, int64_t k, float x_scale, int64_t zero_point,
                        int64_t quant_min, int64_t quant_max, const int8_t* q, const float* scales,
                        const int32_t* wsum, const float* bias, int64_t n, float* y) {
  const char* fn = "int8_static_linear";
  check_dims(fn, n, k, m);
  check_static_qparams(x_scale, zero_point, quant_min, quant_max);
  check_ptr(fn, "x", x, m * k);
  check_ptr(fn, "q", q, n * k);
  check_ptr(fn, "scales", scales, n);
  check_ptr(fn, "wsum", wsum, n);
  check_ptr(fn, "y", y, m * n);
  // quint8 levels are stored minus 128 so that every level fits in int8.
  const int32_t shift = quant_max > 127 ? 128 : 0;
  const int32_t zp = static_cast<int32_t>(zero_point) - shift;
  std::vector<int8_t> xq(static_cast<size_t>(m * k));
  const bool avx2 = use_avx2();
  const float inv = 1.f / x_scale;
  const auto qmin = static_cast<int32_t>(quant_min), qmax = static_cast<int32_t>(quant_max);
  const auto zp_level = static_cast<int32_t>(zero_point);
  parallel_for(m, row_grain(k), [&](int64_t b, int64_t e) {
    WATTWISE_PICK(
        avx2,
        kernels::quantize_affine_avx2(x, k, b, e, inv, zp_level, qmin, qmax, shift, xq.data()),
        kernels::quantize_affine_ref(x, k, b, e, inv, zp_level, qmin, qmax, shift, xq.data()));
  });
  const std::vector<float> xs(static_cast<size_t>(m), x_scale);
  const std::vector<int32_t> xzp(static_cast<size_t>(m), zp);
  run_gemm(
      {xq.data(), xs.data(), zp != 0 ? xzp.data() : nullptr, m, k, q, scales, wsum, bias, n, y});
}

void int8_row_sums(const int8_t* q, int64_t n, int64_t k, int32_t* wsum) {
  check_dims("int8_row_sums", n, k);
  check_ptr("int8_row_sums", "q", q, n * k);
  check_ptr("int8_row_sums", "wsum", wsum, n);
  for (int64_t j = 0; j < n; ++j) {
    int32_t s = 0;
    for (int64_t t = 0; t < k; ++t) s += q[j * k + t];
    wsum[j] = s;
  }
}

void half_quantize(const float* w, int64_t n, int64_t k, HalfFormat format, uint16_t* out) {
  check_dims("half_quantize", n, k);
  check_ptr("half_quantize", "w", w, n * k);
  check_ptr("half_quantize", "out", out, n * k);
  const bool avx2 = use_avx2();
  parallel_for(n, row_grain(k), [&](int64_t b, int64_t e) {
    WATTWISE_PICK(avx2, kernels::half_quantize_avx2(w, k, format, b, e, out),
                  kernels::half_quantize_ref(w, k, format, b, e, out));
  });
}

void half_dequantize(const uint16_t* w, int64_t n, int64_t k, HalfFormat format, float* out) {
  check_dims("half_dequantize", n, k);
  check_ptr("half_dequantize", "w", w, n * k);
  check_ptr("half_dequantize", "out", out, n * k);
  // Widening is exact in both formats, so the scalar conversion is the only path.
  parallel_for(n, row_grain(k), [&](int64_t b, int64_t e) {
    for (int64_t i = b * k; i < e * k; ++i) out[i] = half_value(w[i], format);
  });
}

void half_linear(const float* x, int64_t m, int64_t k, const uint16_t* w, HalfFormat format,
                 const float* bias, int64_t n, float* y) {
  const char* fn = "half_linear";
  check_dims(fn, n, k, m);
  check_ptr(fn, "x", x, m * k);
  check_ptr(fn, "w", w, n * k);
  check_ptr(fn, "y", y, m * n);
  const kernels::HalfLinear p{x, m, k, w, format, bias, n, y};
  const bool avx2 = use_avx2();
  parallel_for(n, gemm_grain(m, k, n), [&](int64_t b, int64_t e) {
    WATTWISE_PICK(avx2, kernels::half_linear_avx2(p, b, e), kernels::half_linear_ref(p, b, e));
  });
}

}  // namespace wattwise::quant
