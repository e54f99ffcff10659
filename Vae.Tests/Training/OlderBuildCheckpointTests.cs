using Vae.Cli;
using VaeTool = Vae.Tests.Cli.Vae;

namespace Vae.Tests.Training;

/// <summary>Run directories written by older builds (committed fixtures, <c>Fixtures/older-builds/README.md</c>) resume
/// in this build and continue exactly as the build that wrote them continued them.</summary>
public class OlderBuildCheckpointTests
{
    static string Fixture(string name) => Path.Combine(TestEnvironment.RepositoryRoot, "Vae.Tests", "Fixtures", "older-builds", name);

    static string CopyOf(string source)
    {
        string target = Path.Combine(TestEnvironment.NewTempDirectory(), "run");
        Directory.CreateDirectory(target);
        foreach (string file in Directory.GetFiles(source)) File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        return target;
    }

    static byte[] Parameters(Trainer trainer)
    {
        using var v = trainer.Model.Core.ParameterVector.detach().contiguous();
        var bytes = new byte[v.NumberOfElements * v.ElementSize];
        v.bytes.CopyTo(bytes);
        return bytes;
    }

    [Theory]
    [InlineData("28d7c06-checkpoint-vae")] // the original binary format, before run checkpoints were safetensors
    [InlineData("57bb9cb-safetensors")]    // safetensors, before deeper networks and Adam added fields
    public void ARunWrittenByAnOlderBuildContinuesAsThatBuildContinuedIt(string fixture)
    {
        string run = CopyOf(Path.Combine(Fixture(fixture), "start"));
        var (code, _, err) = VaeTool.Run("train", "--resume", run, "--samples", "30000", "--threads", "1");
        Assert.True(code == VaeCommand.Ok, err);
        var expected = TestRecords.Curve(Path.Combine(Fixture(fixture), "continued"));
        var actual = TestRecords.Curve(run);
        Assert.Equal(expected.Select(e => e.Samples), actual.Select(e => e.Samples));
        using var now = Trainer.Resume(run);
        using var then = Trainer.Resume(CopyOf(Path.Combine(Fixture(fixture), "continued")));
        Assert.Equal(then.Step, now.Step);
        if (TestEnvironment.MklRunsAvx512)
        {
            // The fixtures were written on MKL's AVX-512 kernels: on the same path the continuation is the same, bit for bit.
            Assert.Equal(expected, actual);
            Assert.True(Parameters(then).SequenceEqual(Parameters(now)), "the parameters at 30,000 samples differ from the older build's");
        }
        else
        {
            // Another kernel path rounds float32 differently along the 100 steps: the same run, to hundredths of a nat.
            foreach (var (e, a) in expected.Zip(actual))
                Assert.True(Math.Abs(e.Train - a.Train) < 0.05 && Math.Abs(e.Test - a.Test) < 0.05, $"at {a.Samples}: {a.Train}, {a.Test} against {e.Train}, {e.Test}");
        }
    }
}
