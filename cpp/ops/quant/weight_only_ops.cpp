// CPU kernels of the weight-only quantization ops: checks, then the torch-free core.
#include <ATen/core/Tensor.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>
#include <torch/library.h>

#include <optional>
#include <stdexcept>
#include <tuple>
#include <vector>

#include "../common.h"
#include "wattwise/quant/weight_only.h"

namespace wattwise::ops {
namespace {

void check_group_size(const char* op, int64_t k, int64_t group_size) {
  try {
    quant::check_int4_group_size(k, group_size);
  } catch (const std::invalid_argument& e) {
    TORCH_CHECK_VALUE(false, op, ": ", e.what());
  }
}

// From enough input rows on, a Linear is compute-bound and ATen's fp32 GEMM catches up with
// the fused dequantize-and-multiply kernels: dequantize 1024 weight rows at a time and
// multiply them with at::addmm/at::mm into the output's columns (about 0.85x of a plain fp32
// GEMM). Crossovers measured on a 4096x4096 stack with 2 threads: the fused int8 kernel is
// 1.4x fp32 at 128 rows and 1.0x at 512; int4 (costlier unpacking) 1.14x at 128 and 0.81x
// at 256.
constexpr int64_t kInt8GemmMinRows = 512;
constexpr int64_t kInt4GemmMinRows = 192;
constexpr int64_t kGemmBlockRows = 1024;

template <typename DequantizeRows>
void blocked_dequant_gemm(const at::Tensor& x2d, const at::Tensor& bias, int64_t n, int64_t k,
                          at::Tensor& y2d, DequantizeRows dequantize_rows) {
  at::Tensor block = at::empty({std::min(n, kGemmBlockRows), k}, x2d.options());
  for (int64_t r0 = 0; r0 < n; r0 += kGemmBlockRows) {
    const int64_t rows = std::min(kGemmBlockRows, n - r0);
    at::Tensor w = block.narrow(0, 0, rows);
    dequantize_rows(r0, rows, w.mutable_data_ptr<float>());
    at::Tensor out = y2d.narrow(1, r0, rows);
    if (bias.defined()) {
      at::addmm_out(out, bias.narrow(0, r0, rows), x2d, w.t());
    } else {
      at::mm_out(out, x2d, w.t());
    }
  }
}

std::tuple<at::Tensor, at::Tensor> int8_quantize(const at::Tensor& weight) {
  const char* op = "int8_weight_only_quantize";
  check_cpu(op, "weight", weight);
  check_dtype(op, "weight", weight, at::kFloat);
  check_dim(op, "weight", weight, 2);
  const at::Tensor w = weight.contiguous();
  const int64_t n = w.size(0), k = w.size(1);
  at::Tensor q = at::empty({n, k}, w.options().dtype(at::kChar));
  at::Tensor scales = at::empty({n}, w.options());
  sync_num_threads();
  quant::int8_quantize(w.const_data_ptr<float>(), n, k, q.mutable_data_ptr<int8_t>(),
                       scales.mutable_data_ptr<float>());
  return {q, scales};
}

void check_int8_pair(const char* op, const at::Tensor& qweight, const at::Tensor& scales) {
  check_cpu(op, "qweight", qweight);
  check_dtype(op, "qweight", qweight, at::kChar);
  check_dim(op, "qweight", qweight, 2);
  check_cpu(op, "scales", scales);
  check_dtype(op, "scales", scales, at::kFloat);
  TORCH_CHECK_VALUE(scales.dim() == 1 && scales.size(0) == qweight.size(0), op,
                    ": scales must have shape [", qweight.size(0), "], got ", scales.sizes());
}

at::Tensor int8_dequantize(const at::Tensor& qweight, const at::Tensor& scales) {
  const char* op = "int8_weight_only_dequantize";
  check_int8_pair(op, qweight, scales);
  const at::Tensor q = qweight.contiguous(), s = scales.contiguous();
  const int64_t n = q.size(0), k = q.size(1);
  at::Tensor w = at::empty({n, k}, s.options());
  sync_num_threads();
  quant::int8_dequantize(q.const_data_ptr<int8_t>(), s.const_data_ptr<float>(), n, k,
                         w.mutable_data_ptr<float>());
  return w;
}

at::Tensor int8_linear(const at::Tensor& input, const at::Tensor& qweight, const at::Tensor& scales,
                       const std::optional<at::Tensor>& bias) {
  const char* op = "int8_weight_only_linear";
  check_int8_pair(op, qweight, scales);
  const int64_t n = qweight.size(0), k = qweight.size(1);
  const LinearOperands io = linear_operands(op, input, k, n, bias);
  const at::Tensor q = qweight.contiguous(), s = scales.contiguous();
  const int64_t m = io.m;
  if (m >= kInt8GemmMinRows && k > 0 && n > 0) {
    at::Tensor y2d = io.y.view({m, n});
    blocked_dequant_gemm(io.x.view({m, k}), io.b, n, k, y2d,
                         [&](int64_t r0, int64_t rows, float* w) {
                           quant::int8_dequantize(q.const_data_ptr<int8_t>() + r0 * k,
                                                  s.const_data_ptr<float>() + r0, rows, k, w);
                         });
    return io.y;
  }
  quant::int8_linear(io.x.const_data_ptr<float>(), m, k, q.const_data_ptr<int8_t>(),
                     s.const_data_ptr<float>(), optional_data(io.b), n,
                     io.y.mutable_data_ptr<float>());
  return io.y;
}

std::tuple<at::Tensor, at::Tensor> int4_quantize(const at::Tensor& weight, int64_t group_size) {
  const char* op = "int4_weight_only_quantize";
  check_cpu(op, "weight", weight);
  check_dtype(op, "weight", weight, at::kFloat);
  check_dim(op, "weight", weight, 2);
  const int64_t n = weight.size(0), k = weight.size(1);
  check_group_size(op, k, group_size);
  const at::Tensor w = weight.contiguous();
  at::Tensor packed = at::empty({n, k / 2}, w.options().dtype(at::kByte));
  at::Tensor scales = at::empty({n, k / group_size}, w.options().dtype(at::kHalf));
  sync_num_threads();
  quant::int4_quantize(w.const_data_ptr<float>(), n, k, group_size,
                       packed.mutable_data_ptr<uint8_t>(),
                       reinterpret_cast<uint16_t*>(scales.mutable_data_ptr<at::Half>()));
  return {packed, scales};
}

void check_int4_pair(const char* op, const at::Tensor& qweight, const at::Tensor& scales,
                     int64_t group_size) {
  check_cpu(op, "qweight", qweight);
  check_dtype(op, "qweight", qweight, at::kByte);
  check_dim(op, "qweight", qweight, 2);
  check_cpu(op, "scales", scales);
  check_dtype(op, "scales", scales, at::kHalf);
  check_dim(op, "scales", scales, 2);
  const int64_t n = qweight.size(0), k = qweight.size(1) * 2;
  check_group_size(op, k, group_size);
  TORCH_CHECK_VALUE(scales.size(0) == n && scales.size(1) == k / group_size, op,
                    ": scales must have shape [", n, ", ", k / group_size, "] for qweight ",
                    qweight.sizes(), " and group_size ", group_size, ", got ", scales.sizes());
}

at::Tensor int4_dequantize(const at::Tensor& qweight, const at::Tensor& scales,
                           int64_t group_size) {
  const char* op = "int4_weight_only_dequantize";
  check_int4_pair(op, qweight, scales, group_size);
  const at::Tensor q = qweight.contiguous(), s = scales.contiguous();
  const int64_t n = q.size(0), k = q.size(1) * 2;
  at::Tensor w = at::empty({n, k}, q.options().dtype(at::kFloat));
  sync_num_threads();
  quant::int4_dequantize(q.const_data_ptr<uint8_t>(),
                         reinterpret_cast<const uint16_t*>(s.const_data_ptr<at::Half>()), n, k,
                         group_size, w.mutable_data_ptr<float>());
  return w;
}

at::Tensor int4_linear(const at::Tensor& input, const at::Tensor& qweight, const at::Tensor& scales,
                       int64_t group_size, const std::optional<at::Tensor>& bias) {
  const char* op = "int4_weight_only_linear";
  check_int4_pair(op, qweight, scales, group_size);
  const int64_t n = qweight.size(0), k = qweight.size(1) * 2;
  const LinearOperands io = linear_operands(op, input, k, n, bias);
  const at::Tensor q = qweight.contiguous(), s = scales.contiguous();
  const auto* scale_bits = reinterpret_cast<const uint16_t*>(s.const_data_ptr<at::Half>());
  const int64_t m = io.m;
  if (m >= kInt4GemmMinRows && k > 0 && n > 0) {
    at::Tensor y2d = io.y.view({m, n});
    const int64_t groups = k / group_size;
    blocked_dequant_gemm(io.x.view({m, k}), io.b, n, k, y2d,
                         [&](int64_t r0, int64_t rows, float* w) {
                           quant::int4_dequantize(q.const_data_ptr<uint8_t>() + r0 * k / 2,
                                                  scale_bits + r0 * groups, rows, k, group_size, w);
                         });
    return io.y;
  }
  quant::int4_linear(io.x.const_data_ptr<float>(), m, k, q.const_data_ptr<uint8_t>(), scale_bits,
                     group_size, optional_data(io.b), n, io.y.mutable_data_ptr<float>());
  return io.y;
}

}  // namespace

TORCH_LIBRARY_IMPL(wattwise, CPU, m) {
  m.impl("int8_weight_only_quantize", &int8_quantize);
  m.impl("int8_weight_only_dequantize", &int8_dequantize);
  m.impl("int8_weight_only_linear", &int8_linear);
  m.impl("int4_weight_only_quantize", &int4_quantize);
  m.impl("int4_weight_only_dequantize", &int4_dequantize);
  m.impl("int4_weight_only_linear", &int4_linear);
}

}  // namespace wattwise::ops
