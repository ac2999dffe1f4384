// Runs a quantized wattwise model exported from Python with torch.export and packaged by
// AOTInductor (a .pt2 file), on raw float32 input, and writes the raw float32 output:
//
//   run_exported_model MODEL.pt2 INPUT.bin OUTPUT.bin DIM [DIM...]
//
// The package calls the wattwise kernels by op name (torch.ops.wattwise.*), so this program
// links wattwise_ops, whose static initializers register them with the dispatcher.
#include <ATen/ops/empty.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "wattwise/common/cpu.h"

namespace {

bool read_file(const std::string& path, void* data, std::streamsize bytes) {
  std::ifstream in(path, std::ios::binary);
  in.read(static_cast<char*>(data), bytes);
  return in.gcount() == bytes && in.peek() == std::char_traits<char>::eof();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::cerr << "usage: " << argv[0] << " MODEL.pt2 INPUT.bin OUTPUT.bin DIM [DIM...]\n";
    return 2;
  }
  try {
    std::vector<int64_t> shape;
    for (int i = 4; i < argc; ++i) shape.push_back(std::stoll(argv[i]));
    at::Tensor input = at::empty(shape, at::kFloat);
    if (!read_file(argv[2], input.mutable_data_ptr<float>(),
                   static_cast<std::streamsize>(input.numel() * sizeof(float)))) {
      std::cerr << "input file " << argv[2] << " does not hold " << input.numel()
                << " float32 values\n";
      return 2;
    }
    torch::inductor::AOTIModelPackageLoader loader(argv[1]);
    const std::vector<at::Tensor> outputs = loader.run({input});
    const at::Tensor out = outputs.at(0).contiguous();
    std::ofstream f(argv[3], std::ios::binary);
    f.write(static_cast<const char*>(out.const_data_ptr()),
            static_cast<std::streamsize>(out.numel() * sizeof(float)));
    std::cout << "wattwise kernels: " << wattwise::simd_name(wattwise::active_simd())
              << "; output shape " << out.sizes() << "\n";
    return f.good() ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
