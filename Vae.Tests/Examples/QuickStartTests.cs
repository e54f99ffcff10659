using System.Globalization;

namespace Vae.Tests.Examples;

/// <summary>The example programs build with the solution and run.</summary>
public class QuickStartTests
{
    [Fact]
    public async Task QuickStartTrainsEvaluatesSamplesSavesAndLoads()
    {
        string dll = Path.Combine(TestEnvironment.RepositoryRoot, "examples", "QuickStart", "bin", TestEnvironment.Configuration, "net10.0", "QuickStart.dll");
        Assert.True(File.Exists(dll), $"{dll}: the solution's build did not build the example");
        string output = TestEnvironment.NewTempDirectory();
        var (code, output1, errors) = await TestEnvironment.RunProcessAsync("dotnet", [dll, "20000", output], output);
        Assert.True(code == 0, $"exit {code}: {output1}\n{errors}");
        Assert.Contains("trained 20,000 samples", output1);
        foreach (string file in new[] { "model.safetensors", "samples.png", Path.Combine("run", "checkpoint.safetensors") })
            Assert.True(File.Exists(Path.Combine(output, file)), $"{file} missing");
        // It learned: the test bound after 20,000 samples is above the one after 10,000 (the end of Adagrad's warm-up).
        var tests = File.ReadAllLines(Path.Combine(output, "run", "metrics.csv")).Skip(1)
            .Select(l => double.Parse(l.Split(',')[3], CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(2, tests.Length);
        Assert.True(tests[1] > tests[0] + 50, $"test bound {tests[0]} -> {tests[1]}");
    }
}

/// <summary>The F# scripts run under dotnet fsi with the command the README gives: no library path, the library loads
/// the build's patched natives itself.</summary>
public class ScriptTests
{
    [Fact]
    [Trait("Cores", "2")] // the script sets two libtorch threads; test.sh runs it alone
    public async Task ManifoldScriptTrainsAndDrawsAManifold()
    {
        string root = TestEnvironment.RepositoryRoot;
        string natives = Path.Combine(root, "Vae.Cli", "bin", "Release", "net10.0", "runtimes", "linux-x64", "native");
        Assert.True(Directory.Exists(natives), $"{natives}: the script needs the Release build of Vae.Cli");
        string png = Path.Combine(TestEnvironment.NewTempDirectory(), "m.png");
        var (code, output, errors) = await TestEnvironment.RunProcessAsync("dotnet", ["fsi", "scripts/manifold.fsx", "20000", png], root,
            new Dictionary<string, string> { ["LD_LIBRARY_PATH"] = "" });
        Assert.True(code == 0, $"exit {code}: {output}\n{errors}");
        Assert.Contains("after 20000 samples: train bound", output);
        byte[] b = File.ReadAllBytes(png);
        Assert.Equal(20 * 29 + 1, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(16)));
        // The script must not have copied libtorch's natives anywhere (the trap of #r without the library path).
        Assert.False(Directory.Exists(Path.Combine(root, "scripts", "cpu")));
    }

    [Fact]
    [Trait("Cores", "2")] // the script sets two libtorch threads; test.sh runs it alone
    public async Task TrainSmallScriptTrainsAndReportsItsBounds()
    {
        string root = TestEnvironment.RepositoryRoot;
        string natives = Path.Combine(root, "Vae.Cli", "bin", "Release", "net10.0", "runtimes", "linux-x64", "native");
        Assert.True(Directory.Exists(natives), $"{natives}: the script needs the Release build of Vae.Cli");
        var (code, output, errors) = await TestEnvironment.RunProcessAsync("dotnet", ["fsi", "scripts/train-small.fsx"], root,
            new Dictionary<string, string> { ["LD_LIBRARY_PATH"] = "" });
        Assert.True(code == 0, $"exit {code}: {output}\n{errors}");
        // 300,000 samples of the paper's settings lift the bound far above the initial -543 nats.
        var m = System.Text.RegularExpressions.Regex.Match(output, @"after 300000 samples: test bound (-?[0-9.]+), IWAE \(K = 100, 1000 images\) (-?[0-9.]+)");
        Assert.True(m.Success, output);
        double bound = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), iwae = double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
        Assert.InRange(bound, -200, -100);
        Assert.True(iwae >= bound - 2, $"IWAE {iwae} below the bound {bound}");
    }

    [Fact]
    public async Task AScriptTakesVaeCoreFromALocalFeedWithNoLibraryPath()
    {
        // The README's route: dotnet pack into a folder, then #i "nuget: <folder>" and #r "nuget: Vae.Core". Nothing
        // builds the script, so the package's patched libLibTorchSharp.so is what lets libtorch load here.
        string dir = TestEnvironment.NewTempDirectory(), feed = Path.Combine(dir, "feed");
        string version = "0.1.0-script." + Guid.NewGuid().ToString("N")[..10];
        foreach (string project in new[] { "Vae.Data.FSharp/Vae.Data.FSharp.fsproj", "Vae.Core.FSharp/Vae.Core.FSharp.fsproj" })
        {
            var pack = await TestEnvironment.RunProcessAsync("dotnet",
                ["pack", project, "-c", TestEnvironment.Configuration, "--no-build", "--no-restore", "-o", feed, $"-p:PackageVersion={version}", "-nologo"],
                TestEnvironment.RepositoryRoot);
            Assert.True(pack.ExitCode == 0, pack.Output + pack.Errors);
        }
        string script = Path.Combine(dir, "feed-script.fsx");
        File.WriteAllText(script, $$"""
            #i "nuget: {{feed}}"
            #r "nuget: Vae.Core, {{version}}"
            #r "nuget: TorchSharp-cpu, 0.107.0"
            open Vae.Core
            let x = TorchSharp.torch.rand([| 50L; 6L |], generator = Torch.generator 3L)
            let model = VaeModel.create { InputDim = 6; HiddenUnits = 5; LatentDim = 2; Likelihood = Bernoulli; DType = TorchSharp.torch.float32; InitStd = 0.01; HiddenLayers = 1 } (Torch.generator 1L)
            printfn "libtorch %s; bound %.3f" (Torch.load ()) (Evaluation.bound B model x 50 (Torch.generator 2L))
            """);
        try
        {
            var (code, output, errors) = await TestEnvironment.RunProcessAsync("dotnet", ["fsi", script], dir, new Dictionary<string, string> { ["LD_LIBRARY_PATH"] = "" });
            Assert.True(code == 0, $"exit {code}: {output}\n{errors}");
            // Six Bernoulli pixels under a near-zero decoder: about 6 log 2 = 4.16 nats below zero.
            var m = System.Text.RegularExpressions.Regex.Match(output, @"libtorch 2\.10[0-9.]*; bound (-?[0-9.]+)");
            Assert.True(m.Success, output);
            Assert.InRange(double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), -4.3, -4.0);
        }
        finally
        {
            foreach (string id in new[] { "vae.core", "vae.data" })
            {
                string cached = Path.Combine(TestEnvironment.NuGetPackageRoot, id, version);
                if (Directory.Exists(cached)) Directory.Delete(cached, recursive: true);
            }
        }
    }
}
