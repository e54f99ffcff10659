using Vae.Cli;

namespace Vae.Tests.Cli;

/// <summary>Runs the vae command in-process and captures its output.</summary>
public static class Vae
{
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = VaeCommand.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }
}

public class DataCommandTests
{
    [Theory]
    [InlineData("frobnicate")]
    [InlineData("data")]
    [InlineData("data", "fetch")]
    [InlineData("data", "fetch", "cifar10")]
    [InlineData("data", "info", "--colour", "red")]
    [InlineData("data", "fetch", "mnist", "--cache")]
    [InlineData("data", "fetch", "mnist", "extra", "words")]
    public void BadUsageIsOneLineAndExitCode2(params string[] args)
    {
        var (code, _, err) = Vae.Run(args);
        Assert.Equal(VaeCommand.BadUsage, code);
        Assert.StartsWith("vae: ", err);
        Assert.Single(err.TrimEnd().Split('\n'));
    }

    [Fact]
    public void InfoListsEveryFileWithItsChecksumAndNamesAMismatch()
    {
        // A cache of its own holding copies of the real MNIST files, one of them altered, and no Frey Face.
        string cache = TestEnvironment.NewTempDirectory();
        var real = global::Vae.Data.DataSets.Info(TestEnvironment.CachedData).Where(f => f.DataSet == "mnist").ToList();
        Assert.All(real, f => Assert.True(f.Present && f.Valid, $"{f.Path}: the test command's set-up caches MNIST"));
        string mnist = Path.Combine(cache, Path.GetFileName(Path.GetDirectoryName(real[0].Path)!));
        Directory.CreateDirectory(mnist);
        foreach (var f in real) File.Copy(f.Path, Path.Combine(mnist, Path.GetFileName(f.Path)));
        string altered = Path.Combine(mnist, Path.GetFileName(real[1].Path));
        using (var stream = File.OpenWrite(altered)) { stream.Seek(100, SeekOrigin.Begin); stream.WriteByte(0x5A); }

        var (code, output, _) = Vae.Run("data", "info", "--cache", cache);
        Assert.Equal(VaeCommand.Ok, code);
        Assert.Contains($"cache: {cache}", output);
        var lines = output.Split('\n');
        foreach (var f in real.Where(f => f.Path != real[1].Path))
            Assert.Contains(lines, l => l.Contains(Path.GetFileName(f.Path)) && l.Contains(f.Sha256!) && l.TrimEnd().EndsWith(" ok", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains(Path.GetFileName(altered)) && l.Contains($"CHECKSUM MISMATCH (expected {real[1].ExpectedSha256})"));
        Assert.Contains(lines, l => l.StartsWith("frey-face", StringComparison.Ordinal) && l.TrimEnd().EndsWith("missing", StringComparison.Ordinal));
    }

    [Fact]
    public void FetchWithoutAnySourceIsExitCode2AndNamesTheSources()
    {
        string cache = TestEnvironment.NewTempDirectory();
        var (code, _, err) = Vae.Run("data", "fetch", "frey-face", "--cache", cache, "--offline", "--frey-face", "/nonexistent/frey.mat");
        Assert.Equal(VaeCommand.BadUsage, code);
        Assert.Contains("/nonexistent/frey.mat", err);
    }

    [Fact]
    public void VersionReportsLibTorch()
    {
        var (code, output, _) = Vae.Run("version");
        Assert.Equal(VaeCommand.Ok, code);
        Assert.Contains("libtorch 2.10", output);
    }

    // A process of its own, since MKL chooses its kernels once per process.
    [Theory]
    [InlineData(null)]
    [InlineData("default")]
    public async Task VersionReportsMklsKernelChoiceAndVaeMklDefaultKeepsMkls(string? vaeMkl)
    {
        string cli = TestEnvironment.CliDll;
        var environment = new Dictionary<string, string>();
        if (vaeMkl is not null) environment["VAE_MKL"] = vaeMkl;
        var (code, output, _) = await TestEnvironment.RunProcessAsync("dotnet", [cli, "version"], TestEnvironment.RepositoryRoot, environment);
        Assert.Equal(VaeCommand.Ok, code);
        // The test process chose as vae does (it has no VAE_MKL unless the test command was given one).
        bool avx512 = vaeMkl is null && TestEnvironment.MklChoice.Avx512;
        Assert.Contains(avx512 ? "MKL's AVX-512 kernels" : "MKL's own dispatch", output);
        if (vaeMkl is not null) Assert.Contains("MKL's own dispatch (not requested)", output);
        Assert.Contains("malloc keeps freed memory", output);
    }

    // A process of its own: the settings are process-wide, and the test host has made its choice.
    [Fact]
    public async Task NativeTuningOffKeepsTheLibrariesDefaultsAndVersionSaysSo()
    {
        string cli = TestEnvironment.CliDll;
        var (code, output, errors) = await TestEnvironment.RunProcessAsync("dotnet", [cli, "version", "--native-tuning", "off"], TestEnvironment.RepositoryRoot);
        Assert.True(code == VaeCommand.Ok, errors);
        Assert.Contains("MKL's own dispatch (not requested); glibc's default malloc", output);
        var bad = Vae.Run("train", "--native-tuning", "sometimes");
        Assert.Equal(VaeCommand.BadUsage, bad.Code);
        Assert.Contains("--native-tuning: expected one of on|off", bad.Err);
    }
}

public class BenchCommandTests
{
    [Fact]
    public void BenchReportsThisMachinesThroughput()
    {
        // A smoke test of the command's output, not a timing: speed is read from the benchmarks, never asserted in tests.
        var (code, output, err) = Vae.Run("bench", "--steps", "5", "--threads", "1");
        Assert.True(code == VaeCommand.Ok, err);
        Assert.Contains("hand-derived gradient", output);
        Assert.Matches(@"\d+ samples/s, \d+\.\d\d ms per step over 5 steps", output);
    }

    [Fact]
    public async Task ThePairedBenchmarkPrintsItsTableAndTheSpeedupLine()
    {
        string bench = Path.Combine(TestEnvironment.RepositoryRoot, "bench", "Vae.Bench", "bin", TestEnvironment.Configuration, "net10.0", "Vae.Bench.dll");
        var (code, output, errors) = await TestEnvironment.RunProcessAsync("dotnet", ["exec", bench, "--quick", "--threads", "1", "--steps", "3", "--repetitions", "1"],
            TestEnvironment.RepositoryRoot, new Dictionary<string, string> { ["OMP_NUM_THREADS"] = "1" });
        Assert.True(code == 0, errors);
        Assert.Contains("aevb-mnist-m100", output);
        Assert.Contains("GFLOP/s", output);
        Assert.Matches(@"aevb-mnist-m100 speedup vs straightforward: \d+\.\d\d\s*$", output);
        // The importance-weighted step on Burda et al.'s network, by hand and by autograd beside its multiply bound; alone with --iwae.
        Assert.Matches(@"iwae-burda-k50-m20 +1 +\d+ samples/s \(hand-derived step; autograd \d+, \d+\.\d\dx; ", output);
        var iwae = await TestEnvironment.RunProcessAsync("dotnet", ["exec", bench, "--iwae", "--threads", "1", "--steps", "3", "--repetitions", "1"],
            TestEnvironment.RepositoryRoot, new Dictionary<string, string> { ["OMP_NUM_THREADS"] = "1" });
        Assert.True(iwae.ExitCode == 0, iwae.Errors);
        Assert.Equal(["iwae-burda-k1-m20", "iwae-burda-k5-m20", "iwae-burda-k50-m20"], iwae.Output.Split('\n').Where(l => l.StartsWith("iwae-burda", StringComparison.Ordinal)).Select(l => l.Split(' ')[0]));
        Assert.DoesNotContain("aevb-mnist-m100", iwae.Output);
        var bad = await TestEnvironment.RunProcessAsync("dotnet", ["exec", bench, "--threads", "0"], TestEnvironment.RepositoryRoot);
        Assert.Equal(2, bad.ExitCode);
        Assert.StartsWith("vae-bench: ", bad.Errors);
    }

    [Fact]
    public async Task TimeToQualityWritesEachRunsCurveAndRedrawsTheFigureFromThem()
    {
        string bench = Path.Combine(TestEnvironment.RepositoryRoot, "bench", "Vae.Bench", "bin", TestEnvironment.Configuration, "net10.0", "Vae.Bench.dll");
        string dir = TestEnvironment.NewTempDirectory();
        var threads = new Dictionary<string, string> { ["OMP_NUM_THREADS"] = "1" };
        var (code, output, errors) = await TestEnvironment.RunProcessAsync("dotnet",
            ["exec", bench, "time-to-quality", "--only", "float32", "--samples", "2000", "--eval-every", "1000", "--out", dir], TestEnvironment.RepositoryRoot, threads);
        Assert.True(code == 0, errors);
        var rows = File.ReadAllLines(Path.Combine(dir, "float32.csv"));
        Assert.Equal("samples,seconds,test_bound", rows[0]);
        Assert.Equal(["1000", "2000"], rows[1..].Select(r => r.Split(',')[0]));
        string png = Path.Combine(dir, "time-to-quality.png");
        File.Delete(png);
        var replot = await TestEnvironment.RunProcessAsync("dotnet", ["exec", bench, "time-to-quality", "--replot", "--out", dir], TestEnvironment.RepositoryRoot, threads);
        Assert.True(replot.ExitCode == 0, replot.Errors);
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47 }, File.ReadAllBytes(png)[..4]);
        var empty = await TestEnvironment.RunProcessAsync("dotnet", ["exec", bench, "time-to-quality", "--replot", "--out", TestEnvironment.NewTempDirectory()], TestEnvironment.RepositoryRoot);
        Assert.Equal(2, empty.ExitCode);
        Assert.Contains("--replot", empty.Errors);
    }

    [Fact]
    public async Task TheKernelMicroBenchmarksRunAndReportTheirTable()
    {
        // BenchmarkDotNet in its shortest useful run: one benchmark, three iterations; the table is the output.
        string bench = Path.Combine(TestEnvironment.RepositoryRoot, "bench", "Vae.Kernels.Bench", "bin", TestEnvironment.Configuration, "net10.0", "Vae.Kernels.Bench.dll");
        var (code, output, errors) = await TestEnvironment.RunProcessAsync("dotnet",
            ["exec", bench, "--filter", "*AscendOnePass*", "--warmupCount", "1", "--iterationCount", "3", "--invocationCount", "4", "--unrollFactor", "2"],
            TestEnvironment.NewTempDirectory(), new Dictionary<string, string> { ["OMP_NUM_THREADS"] = "1" });
        Assert.True(code == 0, output + errors);
        Assert.Matches(@"\| AscendOnePass +\| +[0-9.]+ .s", output);
        Assert.Contains("executed benchmarks: 1", output);
    }

    [Theory]
    [InlineData("bench", "--threads", "0")]
    [InlineData("bench", "--steps", "x")]
    [InlineData("bench", "extra")]
    public void BadBenchOptionsAreOneLineAndExitCode2(params string[] args)
    {
        var (code, _, err) = Vae.Run(args);
        Assert.Equal(VaeCommand.BadUsage, code);
        Assert.Single(err.TrimEnd().Split('\n'));
    }
}
