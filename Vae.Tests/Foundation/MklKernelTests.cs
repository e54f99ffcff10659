using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace Vae.Tests.Foundation;

/// <summary>NativeTuning.useMklAvx512: MKL's AVX-512 kernels on AMD CPUs with AVX-512, and that they compute correctly here.</summary>
public class MklKernelTests
{
    static bool AmdWithAvx512()
    {
        if (!X86Base.IsSupported || !OperatingSystem.IsLinux()) return false;
        var (_, b, c, d) = X86Base.CpuId(0, 0);
        string vendor = System.Text.Encoding.ASCII.GetString([.. BitConverter.GetBytes(b), .. BitConverter.GetBytes(d), .. BitConverter.GetBytes(c)]);
        return vendor == "AuthenticAMD" && Avx512F.IsSupported && Avx512BW.IsSupported && Avx512DQ.IsSupported && Avx512F.VL.IsSupported;
    }

    static bool KeptByEnvironment => Environment.GetEnvironmentVariable("VAE_MKL") == "default";

    [Fact]
    public void AvxFiveTwelveKernelsAreChosenExactlyOnAmdCpusWithAvxFiveTwelve()
    {
        Assert.Equal(AmdWithAvx512() && !KeptByEnvironment, TestEnvironment.MklChoice.Avx512);
        Assert.Contains(TestEnvironment.MklChoice.Avx512 ? "AVX-512" : "own dispatch", TestEnvironment.MklChoice.Description);
    }

    [Fact]
    public void ASecondCallKeepsTheChoice() => Assert.Equal(TestEnvironment.MklChoice, NativeTuning.Apply(NativeTuningOptions.FromEnvironment() with { RetainFreedMemory = false }).Mkl);

    // The fused step's and the evaluation's float32 products (a W^T, a^T b, d W), each held to float64 within the
    // rounding bound of a k-term sum, |error| <= k u (|A| |B|) with u = 2^-24; the float64 product is itself checked
    // entry by entry against plain dot products on a sample of entries.
    [Theory]
    [InlineData(100, 784, 500, "a W^T")]
    [InlineData(500, 100, 784, "a^T b")]
    [InlineData(100, 784, 500, "d W")]
    [InlineData(1000, 784, 500, "a W^T")]
    [InlineData(5100, 500, 784, "a W^T")]
    public void Float32MultipliesAgreeWithFloat64WithinTheRoundingBound(int m, int k, int n, string layout)
    {
        using var scope = torch.NewDisposeScope();
        var g = new torch.Generator(7UL);
        var (a, b) = layout switch
        {
            "a W^T" => (torch.randn([m, k], generator: g), torch.randn([n, k], generator: g).t()),
            "a^T b" => (torch.randn([k, m], generator: g).t(), torch.randn([k, n], generator: g)),
            _ => (torch.randn([m, k], generator: g), torch.randn([k, n], generator: g)),
        };
        var c32 = torch.mm(a, b);
        var a64 = a.to_type(ScalarType.Float64);
        var b64 = b.to_type(ScalarType.Float64);
        var c64 = torch.mm(a64, b64);
        var bound = torch.mm(a64.abs(), b64.abs()).mul(k * Math.Pow(2, -24));
        double worst = (c32.to_type(ScalarType.Float64) - c64).abs().div(bound).max().ToDouble();
        Assert.True(worst <= 1.0, $"{m} x {k} x {n} ({layout}): an error of {worst:G3} times the rounding bound");

        var ac = a64.contiguous().data<double>().ToArray();
        var bc = b64.contiguous().data<double>().ToArray();
        var cc = c64.contiguous().data<double>().ToArray();
        var pick = new Random(3);
        for (int s = 0; s < 50; s++)
        {
            int i = pick.Next(m), j = pick.Next(n);
            double dot = 0, scale = 0;
            for (int l = 0; l < k; l++) { dot += ac[i * k + l] * bc[l * n + j]; scale += Math.Abs(ac[i * k + l] * bc[l * n + j]); }
            Assert.True(Math.Abs(cc[i * n + j] - dot) <= k * Math.Pow(2, -52) * scale, $"float64 entry ({i}, {j}): {cc[i * n + j]} against {dot}");
        }
    }
}
