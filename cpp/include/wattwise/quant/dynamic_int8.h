// int8 x int8 Linear with int32 accumulation (dynamic and static activation quantization),
// and fp16 / bf16 weight storage with fp32 compute.
//
// Weights use the weight-only int8 format (weight_only.h): q[n][k] in [-127, 127] with one
// fp32 scale per output channel. Activations are int8 rows with one fp32 scale each and an
// optional int32 zero point per row:
//   dynamic: per row (token) symmetric, scale = max|x_row| / 127, zero point 0;
//   static:  one (scale, zero_point) for the whole tensor, from calibration.
// y[i][j] = xs[i] * ws[j] * (sum_k xq[i][k] * q[j][k] - xzp[i] * wsum[j]) + bias[j],
// where wsum[j] = sum_k q[j][k] (only needed with zero points).
//
// The AVX2 kernel multiplies with vpmaddubsw (u8 x s8 -> pairs summed in int16) on |xq| and
// q carrying the sign of xq. With |xq| <= 128 and |q| <= 127 a pair sum is at most
// 2 * 128 * 127 = 32512 < 32767, so the int16 step never saturates: exact int32 results
// for every valid input, no reduced range and no offset correction.
//
// Half-precision weights: w[n][k] as IEEE fp16 or bfloat16 bit patterns (round to nearest
// even), y = x @ float(w).T + bias in fp32.
#pragma once

#include <cstdint>

namespace wattwise::quant {

// Activation quantization followed by the int8 product, one call; threads over output
// channels (and rows for the quantization). Zero-sized dimensions are valid.
void int8_dynamic_linear(const float* x, int64_t m, int64_t k, const int8_t* q, const float* scales,
                         const float* bias, int64_t n, float* y);

// Static (calibrated) activations: xq = clamp(round(x / x_scale) + zero_point, quant_min,
// quant_max), the torch.ao affine scheme. quant_min/quant_max must describe 256 levels or
// fewer within [-128, 127] (qint8) or [0, 255] (quint8); wsum from int8_row_sums.
void int8_static_linear(const float* x, int64_t m, int64_t k, float x_scale, int64_t zero_point,
                        int64_t quant_min, int64_t quant_max, const int8_t* q, const float* scales,
                        const int32_t* wsum, const float* bias, int64_t n, float* y);

// wsum[j] = sum_k q[j][k].
void int8_row_sums(const int8_t* q, int64_t n, int64_t k, int32_t* wsum);

// Throws std::invalid_argument unless the static activation parameters are usable.
void check_static_qparams(float x_scale, int64_t zero_point, int64_t quant_min, int64_t quant_max);

enum class HalfFormat { kFloat16 = 0, kBFloat16 = 1 };

void half_quantize(const float* w, int64_t n, int64_t k, HalfFormat format, uint16_t* out);
void half_dequantize(const uint16_t* w, int64_t n, int64_t k, HalfFormat format, float* out);
void half_linear(const float* x, int64_t m, int64_t k, const uint16_t* w, HalfFormat format,
                 const float* bias, int64_t n, float* y);

// Single-threaded kernels over output channels [n_begin, n_end) or rows [m_begin, m_end):
// `_ref` scalar, `_avx2` needs AVX2 + FMA + F16C. Exposed for tests and benchmarks;
// arguments are not validated.
namespace kernels {

struct Int8Gemm {
  const int8_t* xq;      // [m][k]
  const float* xscales;  // [m]
  const int32_t* xzp;    // [m] or null (all zero)
  int64_t m;
  int64_t k;
  const int8_t* q;       // [n][k]
  const float* wscales;  // [n]
  const int32_t* wsum;   // [n]; read only when xzp is not null
  const float* bias;     // [n] or null
  int64_t n;
  float* y;  // [m][n]
};

struct HalfLinear {
  const float* x;
  int64_t m;
  int64_t k;
  const uint16_t* w;
  HalfFormat format;
  const float* bias;
  int64_t n;
  float* y;
};

void int8_gemm_ref(const Int8Gemm& p, int64_t n_begin, int64_t n_end);
void int8_gemm_avx2(const Int8Gemm& p, int64_t n_begin, int64_t n_end);
// Needs AVX-512 F/BW/VL/VNNI. Packs the activations (int8_pack_rows_vnni) and weights
// [n_begin, n_end) (int8_pack_vnni) itself, so it pays off from a few activation rows up.
void int8_gemm_avx512vnni(const Int8Gemm& p, int64_t n_begin, int64_t n_end);
// Few activation rows: row-major weights read once, no packing (vpdpbusd with the weights
// as the unsigned side); xsum[i] = sum of xq row i (int8_row_sums).
void int8_gemv_avx512vnni(const Int8Gemm& p, const int32_t* xsum, int64_t n_begin, int64_t n_end);
// The same on activations packed once for all threads: rows [m_begin, m_end) (m_begin a
// multiple of kVnniRows) against channels [n_begin, n_end), whose weights it packs into
// thread-local scratch.
void int8_gemm_avx512vnni_packed(const Int8Gemm& p, const int32_t* a, const int32_t* xsum,
                                 int64_t m_begin, int64_t m_end, int64_t n_begin, int64_t n_end);
// Activation rows in register tiles of kVnniRows: tile t holds rows t * kVnniRows + i as
// a[t * kVnniRows * groups + g * kVnniRows + i] = inputs 4g .. 4g+3 of the row (one int32,
// zero padded past k), groups = ceil(k / 4); xsum[r] = sum of row r. Packs rows
// [m_begin, m_end) of xq[m][k] (m_begin a multiple of kVnniRows); the call that reaches m
// also zeroes the last tile's unused rows. `a` holds ceil(m / kVnniRows) tiles.
constexpr int64_t kVnniRows = 12;
void int8_pack_rows_vnni(const int8_t* xq, int64_t m, int64_t k, int64_t m_begin, int64_t m_end,
                         int32_t* a, int32_t* xsum);
// AVX2 (no VNNI) versions on the same layouts: weights packed like int8_pack_vnni, rows
// like int8_pack_rows_vnni without the row sums (the sign-transfer product needs no offset)
// plus a_abs, the same tiles with every byte's absolute value (sized like `a`; a packing call
// covers whole tiles: m_begin a multiple of kVnniRows, m_end too or m). m_begin of the GEMM
// must be a multiple of 4.
void int8_pack_panels_avx2(const int8_t* q, int64_t k, int64_t n_begin, int64_t n_end,
                           uint8_t* out);
void int8_pack_rows_avx2(const int8_t* xq, int64_t m, int64_t k, int64_t m_begin, int64_t m_end,
                         int32_t* a, int32_t* a_abs);
void int8_gemm_avx2_packed(const Int8Gemm& p, const int32_t* a, const int32_t* a_abs,
                           int64_t m_begin, int64_t m_end, int64_t n_begin, int64_t n_end);
// Per-token dynamic quantization straight into that layout: int8_quantize_ref followed by
// int8_pack_rows_vnni, in one pass, with the row scales in xscales[m].
void int8_quantize_rows_vnni(const float* x, int64_t m, int64_t k, int64_t m_begin, int64_t m_end,
                             int32_t* a, int32_t* xsum, float* xscales);
// The packed layout vpdpbusd reads, for channels [n_begin, n_end) of q[n][k]: panels of 32
// channels (the last one padded), each ceil(k / 4) groups of 32 x 4 bytes holding
// q[c][4g + b] + 128 as unsigned bytes (padding holds the offset of a zero weight, 128).
void int8_pack_vnni(const int8_t* q, int64_t k, int64_t n_begin, int64_t n_end, uint8_t* out);

// Affine quantization of rows [m_begin, m_end): the stored value is the clamped level minus
// `shift` (128 for quint8 ranges, so that every level fits in int8).
void quantize_affine_ref(const float* x, int64_t k, int64_t m_begin, int64_t m_end, float inv_scale,
                         int32_t zero_point, int32_t quant_min, int32_t quant_max, int32_t shift,
                         int8_t* xq);
void quantize_affine_avx2(const float* x, int64_t k, int64_t m_begin, int64_t m_end,
                          float inv_scale, int32_t zero_point, int32_t quant_min, int32_t quant_max,
                          int32_t shift, int8_t* xq);

void half_quantize_ref(const float* w, int64_t k, HalfFormat format, int64_t n_begin, int64_t n_end,
                       uint16_t* out);
void half_quantize_avx2(const float* w, int64_t k, HalfFormat format, int64_t n_begin,
                        int64_t n_end, uint16_t* out);
void half_linear_ref(const HalfLinear& p, int64_t n_begin, int64_t n_end);
void half_linear_avx2(const HalfLinear& p, int64_t n_begin, int64_t n_end);

}  // namespace kernels
}  // namespace wattwise::quant
