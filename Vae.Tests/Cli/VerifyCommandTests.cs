using Vae.Cli;

namespace Vae.Tests.Cli;

/// <summary><c>vae verify</c>: a recorded run replayed from its options.txt and seed.</summary>
public class VerifyCommandTests
{
    [Fact]
    public void AReplayedRunIsIdenticalToItsRecordAndAChangedRecordIsReportedWithItsDifference()
    {
        string dir = Path.Combine(TestEnvironment.NewTempDirectory(), "run");
        var trained = Vae.Run("train", "--latent", "2", "--hidden", "20", "--samples", "3000", "--eval-every", "1000", "--threads", "1", "--seed", "7", "--out", dir);
        Assert.True(trained.Code == VaeCommand.Ok, trained.Err);
        // Only the record is needed: the checkpoint plays no part in a replay.
        File.Delete(Path.Combine(dir, "checkpoint.safetensors"));

        var (code, output, err) = Vae.Run("verify", dir);
        Assert.True(code == VaeCommand.Ok, err + output);
        Assert.Contains("identical: 3 evaluations", output);

        var (firstCode, first, _) = Vae.Run("verify", dir, "--evaluations", "1");
        Assert.Equal(VaeCommand.Ok, firstCode);
        Assert.Contains("identical: 1 evaluations", first);

        // The second evaluation's test bound moved by 0.0002 nats in the record: a difference, at 2,000 samples.
        string metrics = Path.Combine(dir, "metrics.csv");
        var lines = File.ReadAllLines(metrics);
        var f = lines[2].Split(',');
        f[3] = (double.Parse(f[3], System.Globalization.CultureInfo.InvariantCulture) + 0.0002).ToString("F4", System.Globalization.CultureInfo.InvariantCulture);
        lines[2] = string.Join(',', f);
        File.WriteAllLines(metrics, lines);
        var changed = Vae.Run("verify", dir);
        Assert.Equal(VaeCommand.Failure, changed.Code);
        Assert.Contains("different: first at 2,000 samples, largest difference 0.0002", changed.Out);
        // options.txt names the CPU and MKL's kernel path the run trained with, and the verdict reads them.
        Assert.Contains("the same CPU model and kernel path as the record", changed.Out);
        string options = Path.Combine(dir, "options.txt");
        var fields = File.ReadAllLines(options);
        Assert.Contains(fields, l => l.StartsWith("cpu = ", StringComparison.Ordinal));
        File.WriteAllLines(options, fields.Select(l => l.StartsWith("kernels = ", StringComparison.Ordinal) ? "kernels = MKL's AVX2 kernels (elsewhere); AVX-512 absent" : l));
        var otherPath = Vae.Run("verify", dir);
        Assert.Contains("(MKL's AVX2 kernels (elsewhere); AVX-512 absent), replayed on", otherPath.Out);
        Assert.Contains("another kernel path rounds float32 differently", otherPath.Out);
    }

    [Fact]
    public void AFigureThreeRecordReplaysWithItsAppendixDEstimatorAndMonteCarloEmReplaysToo()
    {
        string dir = Path.Combine(TestEnvironment.NewTempDirectory(), "figure3");
        var made = Vae.Run("reproduce", "figure3", "--ntrain", "200", "--budget", "30000", "--evaluations", "2", "--points", "5", "--burn-in", "50", "--step-size", "0.1",
                           "--threads", "1", "--out", dir);
        Assert.True(made.Code == VaeCommand.Ok, made.Err);
        // results.json names the evaluations' estimator (Appendix D on the first 5 images); each run replays with it,
        // Monte Carlo EM (past its warm-up: its second evaluation rose from -543) included.
        foreach (string run in new[] { "j3-aevb", "j3-mcem" })
        {
            var (code, output, err) = Vae.Run("verify", Path.Combine(dir, run));
            Assert.True(code == VaeCommand.Ok, err + output);
            Assert.Contains("identical: 2 evaluations", output);
        }
        // Each names how its Appendix D evaluations treated stuck chains; the committed records, made before, replay
        // with such chains kept, as they were made.
        foreach (string run in new[] { "j3-aevb", "j3-mcem" })
            Assert.Contains("appendix_d_stuck_chains = estimated again", File.ReadAllLines(Path.Combine(dir, run, "options.txt")));
        var committed = RunRecord.Read(Path.Combine(TestEnvironment.RepositoryRoot, "docs", "results", "figure3-ntrain1000", "j3-mcem"));
        Assert.False(committed.RetriesStuckChains);
        Assert.False(global::Vae.Experiments.RunVerification.RecordedEstimator(committed)!.Value.Options.RetryStuckChains);
        // The type that read records before RunRecord moved to the Vae package forwards to it for one version.
#pragma warning disable CS0618
        var old = global::Vae.Experiments.RunRecord.Read(committed.Directory);
#pragma warning restore CS0618
        Assert.Equivalent(committed.Options, old.Options, strict: true);
        Assert.Equal(global::Vae.Experiments.RunVerification.RecordedEstimator(committed), old.Estimator);
        Assert.Equal(committed.Evaluations, old.Evaluations);
        Assert.True(global::Vae.Experiments.RunVerification.RecordedEstimator(RunRecord.Read(Path.Combine(dir, "j3-mcem")))!.Value.Options.RetryStuckChains);
        var mcem = File.ReadAllLines(Path.Combine(dir, "j3-mcem", "metrics.csv"));
        Assert.True(double.Parse(mcem[2].Split(',')[3], System.Globalization.CultureInfo.InvariantCulture) > -300, mcem[2]);
        // Without its results.json the record's values are taken for bounds, and the replay says they differ.
        string alone = Path.Combine(TestEnvironment.NewTempDirectory(), "j3-aevb");
        Directory.CreateDirectory(alone);
        foreach (string file in new[] { "options.txt", "metrics.csv" }) File.Copy(Path.Combine(dir, "j3-aevb", file), Path.Combine(alone, file));
        Assert.Equal(VaeCommand.Failure, Vae.Run("verify", alone, "--evaluations", "1").Code);
    }

    [Fact]
    public void VerifyNamesTheFileAndFieldItCannotRead()
    {
        string dir = TestEnvironment.NewTempDirectory();
        File.WriteAllText(Path.Combine(dir, "options.txt"), "algorithm = aevb\n");
        File.WriteAllText(Path.Combine(dir, "metrics.csv"), "samples,seconds,train_bound,test_bound\n100,1.0,-200.0,-201.0\n");
        var (code, _, err) = Vae.Run("verify", dir);
        Assert.NotEqual(VaeCommand.Ok, code);
        Assert.Matches(@"options\.txt: field '\w+' is missing", err);
        var missing = Vae.Run("verify", Path.Combine(dir, "nowhere"));
        Assert.Equal(VaeCommand.BadUsage, missing.Code);
        Assert.Contains("expected a run directory or a results.json file", missing.Err);
    }
}
