using System.Diagnostics;
using System.Text.Json;
using Vae.Cli;

namespace Vae.Tests.Cli;

public class TrainCommandTests
{
    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    static extern int kill(int pid, int signal);

    static readonly string[] Tiny = ["--latent", "2", "--hidden", "20", "--samples", "3000", "--eval-every", "1000", "--threads", "1"];

    [Theory]
    [InlineData("--latent", "0")]
    [InlineData("--latent", "two")]
    [InlineData("--hidden", "-5")]
    [InlineData("--estimator", "c")]
    [InlineData("--objective", "elbo2")]
    [InlineData("--k", "0")]
    [InlineData("--encoder-gradient", "score")]
    [InlineData("--step-size", "0")]
    [InlineData("--step-size", "fast")]
    [InlineData("--batch", "0")]
    [InlineData("--samples", "lots")]
    [InlineData("--epochs", "0")]
    [InlineData("--seed", "-1")]
    [InlineData("--threads", "0")]
    [InlineData("--binarize", "always")]
    [InlineData("--precision", "float16")]
    [InlineData("--eval-every", "-1")]
    [InlineData("--dataset", "cifar")]
    [InlineData("--dataset", "idx")]
    [InlineData("--dataset", "npy")]
    [InlineData("--resume", "/nonexistent/run")]
    [InlineData("--unknown", "1")]
    [InlineData("--algorithm", "mcmc")]
    [InlineData("--ntrain", "0")]
    [InlineData("--ntrain", "60001")]
    public void BadOptionIsOneLineAndExitCode2(string option, string value)
    {
        var (code, _, err) = Vae.Run("train", option, value);
        Assert.Equal(VaeCommand.BadUsage, code);
        Assert.StartsWith("vae: ", err.Split('\n').Last(l => l.Length > 0));
    }

    [Theory]
    [InlineData("--algorithm", "wake-sleep")]
    [InlineData("--estimator", "a")]
    [InlineData("--dataset", "frey-face")]
    public void BfloatSixteenOutsideTheFusedStepIsRefused(string option, string value)
    {
        var (code, _, err) = Vae.Run("train", "--precision", "bfloat16", option, value);
        Assert.Equal(VaeCommand.BadUsage, code);
        Assert.Contains("--precision bfloat16 applies to AEVB", err);
    }

    [Fact]
    public void BfloatSixteenTrainsAndIsRecordedInTheRunDirectory()
    {
        string dir = Path.Combine(TestEnvironment.NewTempDirectory(), "bf16");
        var (code, _, err) = Vae.Run("train", "--precision", "bfloat16", "--latent", "2", "--hidden", "20", "--samples", "20000", "--eval-every", "10000", "--threads", "1", "--out", dir);
        Assert.True(code == VaeCommand.Ok, err);
        Assert.Contains("precision = bfloat16", File.ReadAllText(Path.Combine(dir, "options.txt")));
        // The bound rose from the initial -543 (grey levels, J = 2): the updates after Adagrad's warm-up landed.
        var tests = File.ReadAllLines(Path.Combine(dir, "metrics.csv")).Skip(1).Select(l => double.Parse(l.Split(',')[3], System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.True(tests[^1] > tests[0] + 20, $"test bound {string.Join(" -> ", tests)}");
    }

    [Theory]
    [InlineData("shared-encoder", WakeSleepVariant.SharedEncoder, "wake-sleep on MNIST")]
    [InlineData("anglepy", WakeSleepVariant.Anglepy, "wake-sleep (anglepy's recognition model and fantasies) on MNIST")]
    public void WakeSleepRunsFromTheCommandLineAndRecordsItsVariant(string option, WakeSleepVariant variant, string header)
    {
        string dir = Path.Combine(TestEnvironment.NewTempDirectory(), "ws");
        var (code, output, err) = Vae.Run(["train", "--algorithm", "wake-sleep", "--wake-sleep-variant", option, .. Tiny, "--out", dir]);
        Assert.True(code == VaeCommand.Ok, err);
        Assert.StartsWith(header, output);
        string options = File.ReadAllText(Path.Combine(dir, "options.txt"));
        Assert.Contains("algorithm = wake-sleep", options);
        Assert.Contains($"wake_sleep_variant = {variant}", options);
        // The checkpoint and the record both carry it: resume and vae verify train the same variant.
        using var resumed = Trainer.Resume(dir);
        Assert.Equal(variant, resumed.Options.WakeSleepVariant);
        Assert.Equal(variant, RunRecord.Read(dir).Options.WakeSleepVariant);
    }

    [Theory]
    [InlineData("reparameterised", EncoderGradient.Reparameterised, "AEVB (importance-weighted bound, K = 3) on MNIST")]
    [InlineData("dreg", EncoderGradient.DoublyReparameterised, "AEVB (importance-weighted bound, K = 3, doubly reparameterised encoder gradient) on MNIST")]
    public void TheImportanceWeightedObjectiveTrainsFromTheCommandLineAndIsRecorded(string option, EncoderGradient gradient, string header)
    {
        string dir = Path.Combine(TestEnvironment.NewTempDirectory(), "iwae");
        var (code, output, err) = Vae.Run(["train", "--objective", "iwae", "--k", "3", "--encoder-gradient", option, .. Tiny, "--out", dir]);
        Assert.True(code == VaeCommand.Ok, err);
        Assert.StartsWith(header, output);
        string options = File.ReadAllText(Path.Combine(dir, "options.txt"));
        Assert.Contains("objective = ImportanceWeighted", options);
        Assert.Contains($"encoder_gradient = {gradient}", options);
        Assert.Contains("samples_per_datapoint = 3", options);
        Assert.Contains("gradient = hand-derived", options);
        Assert.DoesNotContain("estimator =", options);
        // The checkpoint and the record both carry it: resume and vae verify train the same objective.
        using var resumed = Trainer.Resume(dir);
        Assert.Equal(TrainingObjective.ImportanceWeighted, resumed.Options.Objective);
        Assert.Equal(gradient, resumed.Options.EncoderGradient);
        Assert.Equal(3, resumed.Options.SamplesPerDatapoint);
        var recorded = RunRecord.Read(dir).Options;
        Assert.Equal((TrainingObjective.ImportanceWeighted, gradient, 3), (recorded.Objective, recorded.EncoderGradient, recorded.SamplesPerDatapoint));
    }

    [Theory]
    [InlineData("--encoder-gradient applies to --objective iwae", "--encoder-gradient", "dreg")]
    [InlineData("--objective iwae has its own", "--objective", "iwae", "--estimator", "a")]
    [InlineData("--objective and --k apply to --algorithm aevb", "--algorithm", "wake-sleep", "--objective", "iwae")]
    [InlineData("--objective and --k apply to --algorithm aevb", "--algorithm", "mcem", "--k", "5")]
    [InlineData("--precision bfloat16 applies to AEVB with estimator b, --k 1", "--precision", "bfloat16", "--k", "5")]
    public void ObjectiveOptionsThatDoNotApplyAreUsageErrors(string message, params string[] options)
    {
        var (code, _, err) = Vae.Run(["train", .. options, "--samples", "1000"]);
        Assert.Equal(VaeCommand.BadUsage, code);
        Assert.Contains(message, err);
    }

    [Fact]
    public void BinarizedMnistTrainsOnBinaryDrawsAndIsEvaluatedOnItsBinaryTestSet()
    {
        string dir = Path.Combine(TestEnvironment.NewTempDirectory(), "binary");
        var (code, output, err) = Vae.Run(["train", "--dataset", "binarized-mnist", .. Tiny, "--out", dir]);
        Assert.True(code == VaeCommand.Ok, err);
        Assert.Contains("binarized MNIST: 60000 training images (a fresh binary draw per minibatch) / 10000 official test images binarized once (seed 0) (dynamically binarised)", output);
        Assert.Contains("binarize = dynamic", File.ReadAllText(Path.Combine(dir, "options.txt")));
        var (evalCode, evaluation, evalErr) = Vae.Run("evaluate", "--checkpoint", dir, "--points", "200", "--k", "10", "--threads", "1");
        Assert.True(evalCode == VaeCommand.Ok, evalErr);
        Assert.Contains("binarized MNIST", evaluation);
        Assert.Matches(@"active latent units \(Burda et al\.: the variance of the encoder's mean over the test images above 0\.01\): \d+ of \d+", evaluation);
        var (badCode, _, badErr) = Vae.Run(["train", "--dataset", "binarized-mnist", "--binarize", "none", .. Tiny]);
        Assert.Equal(VaeCommand.BadUsage, badCode);
        Assert.Contains("binarized-mnist is trained with dynamic binarisation", badErr);
    }

    [Fact]
    public void ScoreWritesOneRowPerDatapointWhoseMeanIsTheModelsLogLikelihood()
    {
        string root = TestEnvironment.NewTempDirectory(), dir = Path.Combine(root, "run");
        var (code, _, err) = Vae.Run(["train", .. Tiny, "--out", dir]);
        Assert.True(code == VaeCommand.Ok, err);
        // 30 test images as an .npy file of rows: scored by the file, and as they are by the façade with the same seed.
        var images = global::Vae.Tests.Training.SmallMnist.Test.First(30);
        string npy = Path.Combine(root, "rows.npy");
        File.WriteAllBytes(npy, global::Vae.Core.Data.Npy.encode(false, new global::Vae.Core.Data.Images(30, 28, 28, images.Pixels.ToArray())));
        string csv = Path.Combine(root, "scores.csv");
        var (scoreCode, output, scoreErr) = Vae.Run("score", "--checkpoint", dir, "--data-file", npy, "--k", "50", "--seed", "3", "--out", csv, "--threads", "1");
        Assert.True(scoreCode == VaeCommand.Ok, scoreErr);
        string[] lines = File.ReadAllLines(csv);
        Assert.Equal(DatapointScores.CsvHeader, lines[0]);
        Assert.Equal(31, lines.Length);
        var logLikelihoods = lines.Skip(1).Select(l => double.Parse(l.Split(',')[1], System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        using var model = VariationalAutoEncoder.Load(Trainer.CheckpointPath(dir));
        Assert.Equal(model.LogLikelihood(images, k: 50, seed: 3), logLikelihoods.Average(), 1e-4);
        Assert.Contains($"scored 30 datapoints of {npy} (30 rows) with K = 50", output);
        // The same rows and seed against themselves: every pair ties, an AUROC of exactly a half.
        var (againstCode, against, againstErr) = Vae.Run("score", "--checkpoint", dir, "--data-file", npy, "--k", "50", "--seed", "3", "--out", csv + "2", "--inliers", csv, "--threads", "1");
        Assert.True(againstCode == VaeCommand.Ok, againstErr);
        Assert.Contains($"AUROC, the 30 rows of {csv} above these 30: log p(x) 0.5000, lower bound 0.5000", against);
        var (missing, _, missingErr) = Vae.Run("score", "--checkpoint", dir, "--data-file", npy);
        Assert.Equal(VaeCommand.BadUsage, missing);
        Assert.Contains("--out FILE is required", missingErr);
    }

    /// <summary>Debian's python3-sklearn ships the UCI wine data (178 wines, 13 chemical measurements on scales from 0.1
    /// to 1680), written here as numpy's default float64 .npy.</summary>
    static string WineNpy()
    {
        const string csv = "/usr/lib/python3/dist-packages/sklearn/datasets/data/wine_data.csv";
        Assert.True(File.Exists(csv), $"{csv}: the test needs Debian's python3-sklearn (apt-get install -y python3-sklearn)");
        double[][] rows = [.. File.ReadLines(csv).Skip(1).Select(l => l.Split(',').Take(13).Select(v => double.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray())];
        string header = $"{{'descr': '<f8', 'fortran_order': False, 'shape': ({rows.Length}, 13), }}";
        header = header.PadRight(128 - 10 - 1) + "\n";
        using var bytes = new MemoryStream();
        bytes.Write([0x93, .. "NUMPY"u8, 1, 0, (byte)header.Length, 0]);
        bytes.Write(System.Text.Encoding.ASCII.GetBytes(header));
        foreach (var row in rows) foreach (double v in row) bytes.Write(BitConverter.GetBytes(v));
        string path = Path.Combine(TestEnvironment.NewTempDirectory(), "wine.npy");
        File.WriteAllBytes(path, bytes.ToArray());
        return path;
    }

    [Fact]
    public void RealValuedTabularDataTrainWithAGaussianDecoderAndAreRefusedByABernoulliOne()
    {
        string wine = WineNpy();
        var (bernoulli, _, bernoulliErr) = Vae.Run("train", "--dataset", "npy", "--data-file", wine, "--latent", "2", "--hidden", "20", "--samples", "1000", "--threads", "1",
                                                   "--out", Path.Combine(TestEnvironment.NewTempDirectory(), "b"));
        Assert.NotEqual(VaeCommand.Ok, bernoulli);
        Assert.Contains("a value in [0, 1] (after scaling) for a Bernoulli decoder", bernoulliErr);
        string dir = Path.Combine(TestEnvironment.NewTempDirectory(), "g");
        var (code, output, err) = Vae.Run("train", "--dataset", "npy", "--data-file", wine, "--likelihood", "gaussian", "--latent", "2", "--hidden", "20",
                                          "--step-size", "0.1", "--samples", "300000", "--eval-every", "100000", "--threads", "1", "--out", dir);
        Assert.True(code == VaeCommand.Ok, err);
        Assert.Contains("160 train / 18 test (continuous values)", output);
        Assert.Contains("likelihood = Gaussian", File.ReadAllText(Path.Combine(dir, "options.txt")));
        // From the initial parameters' bound of about -10^5 nats per wine (a unit-variance decoder around 0 for
        // values near 1000) to a few hundred: the Gaussian decoder learnt the scales.
        double[] test = [.. File.ReadAllLines(Path.Combine(dir, "metrics.csv")).Skip(1).Select(l => double.Parse(l.Split(',')[3], System.Globalization.CultureInfo.InvariantCulture))];
        Assert.True(test[^1] > -1000 && test[^1] > test[0], $"test bound {string.Join(" -> ", test)}");
        // Standardised, the same model beats an independent Gaussian per feature (-22.5 nats per wine, fitted on all 178
        // wines, these 18 included) on the held-out wines, in the data's own units.
        string standardized = Path.Combine(TestEnvironment.NewTempDirectory(), "s");
        var (sCode, _, sErr) = Vae.Run("train", "--dataset", "npy", "--data-file", wine, "--likelihood", "gaussian", "--standardize", "--latent", "2", "--hidden", "20",
                                       "--step-size", "0.1", "--samples", "1000000", "--eval-every", "500000", "--threads", "1", "--out", standardized);
        Assert.True(sCode == VaeCommand.Ok, sErr);
        double last = double.Parse(File.ReadAllLines(Path.Combine(standardized, "metrics.csv"))[^1].Split(',')[3], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(last > -21, $"standardised: test bound {last:F2}");
        var (noGaussian, _, noGaussianErr) = Vae.Run("train", "--dataset", "npy", "--data-file", wine, "--standardize", "--samples", "1000");
        Assert.Equal(VaeCommand.BadUsage, noGaussian);
        Assert.Contains("--standardize applies to --likelihood gaussian", noGaussianErr);
        var (wrongData, _, wrongErr) = Vae.Run("train", "--likelihood", "gaussian", "--samples", "1000");
        Assert.Equal(VaeCommand.BadUsage, wrongData);
        Assert.Contains("--likelihood applies to your own data", wrongErr);
    }

    [Fact]
    public void AnOutDirectoryThatCannotBeMadeIsNamedWithItsReason()
    {
        string file = Path.Combine(TestEnvironment.NewTempDirectory(), "a-file");
        File.WriteAllText(file, "");
        var (code, _, err) = Vae.Run(["train", .. Tiny, "--out", Path.Combine(file, "run")]);
        Assert.NotEqual(VaeCommand.Ok, code);
        Assert.Contains($"cannot create the run directory: {file} is not a directory", err);
    }

    [Theory]
    [InlineData("aevb")]
    [InlineData("mcem")]
    public void TheWakeSleepVariantOutsideWakeSleepIsAUsageError(string algorithm)
    {
        var (code, _, err) = Vae.Run("train", "--algorithm", algorithm, "--wake-sleep-variant", "anglepy", "--samples", "1000");
        Assert.Equal(VaeCommand.BadUsage, code);
        Assert.Contains("--wake-sleep-variant applies to --algorithm wake-sleep", err);
    }

    [Fact]
    public void MonteCarloEmRunsFromTheCommandLineOnASubset()
    {
        string dir = Path.Combine(TestEnvironment.NewTempDirectory(), "mcem");
        var (code, output, err) = Vae.Run("train", "--algorithm", "mcem", "--ntrain", "300", "--latent", "2", "--hidden", "20", "--samples", "9000", "--eval-every", "0", "--threads", "1", "--out", dir);
        Assert.True(code == VaeCommand.Ok, err);
        Assert.StartsWith("Monte Carlo EM on MNIST", output);
        Assert.Contains("first 300 training images", output);
        Assert.Contains("train_images = 300", File.ReadAllText(Path.Combine(dir, "options.txt")));
        // Each Monte Carlo EM step is an EM iteration whose five weight updates evaluate the 300 images: 1500 samples.
        var metrics = File.ReadAllLines(Path.Combine(dir, "metrics.csv"));
        Assert.Equal(["9000"], metrics[1..].Select(l => l.Split(',')[0]));
        Assert.Equal(6, Trainer.Resume(dir).Step);
    }

    [Fact]
    public void SamplesAndEpochsTogetherAreRefused()
    {
        var (code, _, err) = Vae.Run("train", "--samples", "100", "--epochs", "1");
        Assert.Equal(VaeCommand.BadUsage, code);
        Assert.Contains("not both", err);
    }

    [Fact]
    public void ABatchLargerThanTheTrainingSetIsAUsageError()
    {
        var (code, _, err) = Vae.Run("train", "--ntrain", "500", "--batch", "1000", "--samples", "1000", "--threads", "1", "--out", TestEnvironment.NewTempDirectory());
        Assert.Equal(VaeCommand.BadUsage, code);
        Assert.Contains("--batch: 1000 exceeds the 500 training images", err);
        Assert.Single(err.Split('\n'), l => l.StartsWith("vae:", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("1", null)]
    [InlineData("1,2", null)]
    [InlineData("two", "OMP_NUM_THREADS=two: expected a positive whole number of threads")]
    [InlineData("0", "OMP_NUM_THREADS=0: expected a positive whole number of threads")]
    public async Task WithoutThreadsTheRunTakesOpenMpsThreadCountAndRefusesABadOne(string openMpThreads, string? error)
    {
        // As libtorch and PyTorch do: OMP_NUM_THREADS, where set, is the default thread count.
        string dir = Path.Combine(TestEnvironment.NewTempDirectory(), "run");
        string cli = TestEnvironment.CliDll;
        var (code, _, errors) = await TestEnvironment.RunProcessAsync("dotnet",
            ["exec", cli, "train", "--ntrain", "500", "--samples", "200", "--eval-every", "100", "--out", dir],
            TestEnvironment.RepositoryRoot, new Dictionary<string, string> { ["OMP_NUM_THREADS"] = openMpThreads });
        if (error is null)
        {
            Assert.True(code == VaeCommand.Ok, errors);
            // A list (threads per nesting level) gives its first level, as OpenMP and PyTorch read it.
            Assert.Contains($"threads = {openMpThreads.Split(',')[0]}", File.ReadAllLines(Path.Combine(dir, "options.txt")));
        }
        else
        {
            Assert.Equal(VaeCommand.BadUsage, code);
            // The last line: libtorch's OpenMP runtime, where loaded first (AMD CPUs), reports the bad value itself.
            Assert.StartsWith($"vae: {error}", errors.TrimEnd().Split('\n')[^1]);
            Assert.False(Directory.Exists(dir));
        }
    }

    [Fact]
    public void MoreThreadsThanLogicalProcessorsWarns()
    {
        string more = (Environment.ProcessorCount + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var (code, _, err) = Vae.Run("evaluate", "--threads", more, "--checkpoint", "/nonexistent/checkpoint.vae");
        // Back to one thread before any assertion, so a failure leaves the later tests of this process as they were.
        var fine = Vae.Run("evaluate", "--threads", "1", "--checkpoint", "/nonexistent/checkpoint.vae");
        Assert.Equal(VaeCommand.BadUsage, code); // the missing file, after the warning
        Assert.Contains($"warning: --threads {more} exceeds the {Environment.ProcessorCount} logical processors", err);
        Assert.DoesNotContain("warning", fine.Err);
    }

    [Fact]
    public void AModelTooLargeForMemoryIsRefusedBeforeItIsAllocated()
    {
        // A million hidden units and 10⁵ latent dimensions: about 3·10¹¹ parameters, some 7 TB with the optimiser's state.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (code, _, err) = Vae.Run("train", "--hidden", "1000000", "--latent", "100000", "--samples", "1000", "--threads", "1", "--out", TestEnvironment.NewTempDirectory());
        Assert.Equal(VaeCommand.BadUsage, code);
        Assert.Contains("needs an estimated", err);
        Assert.Contains("available", err);
        Assert.Single(err.Split('\n'), l => l.StartsWith("vae:", StringComparison.Ordinal));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), "refused without allocating");
    }

    [Fact]
    public void TheMemoryEstimateCountsTheModelItsOptimiserAndOneStep()
    {
        var paper = new VaeModelOptions();
        // 784-500-20 encoder with two heads, 20-500-784 Bernoulli decoder.
        long p = 784 * 500 + 500 + 2 * (500 * 20 + 20) + 20 * 500 + 500 + 500 * 784 + 784;
        Assert.Equal(p, MemoryBudget.ParameterCount(paper));
        Assert.Equal(6 * p * 4, MemoryBudget.ModelBytes(paper));
        Assert.Equal(2 * MemoryBudget.StepBytes(paper, 100), MemoryBudget.StepBytes(paper, 200));
        // Sized from this machine's available memory, so that the estimate exceeds it wherever the test runs.
        var huge = new VaeModelOptions { HiddenUnits = (int)Math.Min(int.MaxValue, MemoryBudget.AvailableBytes() / (6L * 4 * 2 * 784) + 1) };
        var e = Assert.Throws<MemoryBudgetException>(() => new AevbTrainer(huge));
        Assert.True(e.EstimatedBytes > e.AvailableBytes);
        Assert.True(MemoryBudget.AvailableBytes() > 0);
    }

    [Fact]
    public void ResumeCutsTheRecordToTheCheckpointContinuesItsClockAndKeepsItsEvaluationInterval()
    {
        string dir = Path.Combine(TestEnvironment.NewTempDirectory(), "run");
        var first = Vae.Run(["train", .. Tiny, "--out", dir]);
        Assert.True(first.Code == VaeCommand.Ok, first.Err);
        string metrics = Path.Combine(dir, "metrics.csv");
        var before = File.ReadAllLines(metrics);
        // A lost segment: evaluations recorded after the checkpoint at 3000 samples, whose checkpoint write failed.
        File.AppendAllLines(metrics, ["4000,1234.5,-1.0,-1.0", "5000,1240.0,-1.0,-1.0"]);
        var resumed = Vae.Run("train", "--resume", dir, "--samples", "5000", "--threads", "1");
        Assert.True(resumed.Code == VaeCommand.Ok, resumed.Err);
        var rows = File.ReadAllLines(metrics);
        // The rows up to the checkpoint stay as they were; the lost ones are gone; evaluations continue every 1000 samples.
        Assert.Equal(before, rows[..before.Length]);
        Assert.Equal(["1000", "2000", "3000", "4000", "5000"], rows[1..].Select(l => l.Split(',')[0]));
        Assert.DoesNotContain(rows, l => l.Contains("1234.5") || l.EndsWith(",-1.0", StringComparison.Ordinal));
        // The clock continues from the checkpoint's evaluation instead of starting again from zero.
        var seconds = rows[1..].Select(l => double.Parse(l.Split(',')[1], System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.True(seconds.Zip(seconds.Skip(1)).All(p => p.Second >= p.First), string.Join(", ", seconds));
        Assert.Contains("evaluate_every = 1000", File.ReadAllText(Path.Combine(dir, "options.txt")));
    }

    [Fact]
    public void TrainWritesTheRunDirectoryAndEvaluateReadsIt()
    {
        string dir = Path.Combine(TestEnvironment.NewTempDirectory(), "run");
        var (code, output, err) = Vae.Run(["train", .. Tiny, "--out", dir]);
        Assert.True(code == VaeCommand.Ok, err);
        Assert.Contains("grey levels", output);
        var metrics = File.ReadAllLines(Path.Combine(dir, "metrics.csv"));
        Assert.Equal("samples,seconds,train_bound,test_bound", metrics[0]);
        Assert.Equal(["1000", "2000", "3000"], metrics[1..].Select(l => l.Split(',')[0]));
        Assert.True(File.Exists(Path.Combine(dir, "checkpoint.safetensors")));
        Assert.Contains("binarize = none", File.ReadAllText(Path.Combine(dir, "options.txt")));

        // The same --out again is refused; --resume with a larger budget continues it.
        Assert.Equal(VaeCommand.BadUsage, Vae.Run(["train", .. Tiny, "--out", dir]).Code);
        var resumed = Vae.Run("train", "--resume", dir, "--samples", "4000", "--threads", "1");
        Assert.Equal(VaeCommand.Ok, resumed.Code);
        Assert.Contains("4,000", resumed.Out);

        var (evalCode, json, evalErr) = Vae.Run("evaluate", "--checkpoint", Path.Combine(dir, "checkpoint.safetensors"), "--k", "20", "--points", "200", "--json", "--threads", "1");
        Assert.True(evalCode == VaeCommand.Ok, evalErr);
        using var doc = JsonDocument.Parse(json);
        double bound = doc.RootElement.GetProperty("test_bound").GetDouble();
        double iwae = doc.RootElement.GetProperty("test_iwae").GetDouble();
        Assert.InRange(bound, -600, -50);
        Assert.True(iwae > bound);
        Assert.Equal(200, doc.RootElement.GetProperty("test_points").GetInt32());
        Assert.Equal("float32", doc.RootElement.GetProperty("precision").GetString());

        // The bfloat16 output multiply: the same draws, an estimate within a tenth of a nat of float32's.
        var (mixedCode, mixedJson, mixedErr) = Vae.Run("evaluate", "--checkpoint", dir, "--k", "20", "--points", "200", "--json", "--threads", "1", "--precision", "bfloat16");
        Assert.True(mixedCode == VaeCommand.Ok, mixedErr);
        using var mixed = JsonDocument.Parse(mixedJson);
        Assert.Equal("bfloat16", mixed.RootElement.GetProperty("precision").GetString());
        Assert.InRange(mixed.RootElement.GetProperty("test_iwae").GetDouble(), iwae - 0.1, iwae + 0.1);
        var refused = Vae.Run("evaluate", "--checkpoint", dir, "--estimator", "elbo", "--precision", "bfloat16");
        Assert.Equal(VaeCommand.BadUsage, refused.Code);
        Assert.Contains("--precision bfloat16", refused.Err);

        // One estimator on both sets: JSON fields train_<estimator> and test_<estimator>.
        var (hmcCode, hmcJson, hmcErr) = Vae.Run("evaluate", "--checkpoint", dir, "--estimator", "hmc-marginal", "--points", "30", "--posterior-samples", "20", "--leapfrog", "3", "--json", "--threads", "1");
        Assert.True(hmcCode == VaeCommand.Ok, hmcErr);
        using var hmc = JsonDocument.Parse(hmcJson);
        double train = hmc.RootElement.GetProperty("train_hmc_marginal").GetDouble();
        double test = hmc.RootElement.GetProperty("test_hmc_marginal").GetDouble();
        Assert.InRange(train, -600, -50);
        Assert.InRange(test, -600, -50);
        Assert.Equal(30, hmc.RootElement.GetProperty("train_points").GetInt32());
        Assert.False(hmc.RootElement.TryGetProperty("start_candidates", out _), "the default start is not a field, as in older records");
        // The paper's code's start (one prior draw per chain) reaches the estimator: the same seed, other chains.
        var (priorCode, priorJson, priorErr) = Vae.Run("evaluate", "--checkpoint", dir, "--estimator", "hmc-marginal", "--points", "30", "--posterior-samples", "20", "--leapfrog", "3", "--start-candidates", "0", "--json", "--threads", "1");
        Assert.True(priorCode == VaeCommand.Ok, priorErr);
        using var prior = JsonDocument.Parse(priorJson);
        Assert.Equal(0, prior.RootElement.GetProperty("start_candidates").GetInt32());
        Assert.NotEqual(train, prior.RootElement.GetProperty("train_hmc_marginal").GetDouble());
        var negative = Vae.Run("evaluate", "--checkpoint", dir, "--estimator", "hmc-marginal", "--start-candidates", "-1");
        Assert.Equal(VaeCommand.BadUsage, negative.Code);
        Assert.Contains("--start-candidates", negative.Err);
        var elbo = Vae.Run("evaluate", "--checkpoint", dir, "--estimator", "elbo", "--points", "30", "--json", "--threads", "1");
        using var elboDoc = JsonDocument.Parse(elbo.Out);
        Assert.True(elboDoc.RootElement.TryGetProperty("train_elbo", out _));

        // The exact log p(x) of this J = 2 model: at or above the importance-weighted bound on the same images (K = 5000
        // leaves a gap of hundredths of a nat at most), and the prose names the method.
        var exact = Vae.Run("evaluate", "--checkpoint", dir, "--estimator", "exact", "--points", "20", "--json", "--threads", "1");
        Assert.True(exact.Code == VaeCommand.Ok, exact.Err);
        using var exactDoc = JsonDocument.Parse(exact.Out);
        var iwae20 = Vae.Run("evaluate", "--checkpoint", dir, "--estimator", "iwae", "--k", "5000", "--points", "20", "--json", "--threads", "1");
        using var iwaeDoc = JsonDocument.Parse(iwae20.Out);
        foreach (var set in new[] { "train", "test" })
        {
            double truth = exactDoc.RootElement.GetProperty($"{set}_exact").GetDouble(), lower = iwaeDoc.RootElement.GetProperty($"{set}_iwae").GetDouble();
            Assert.InRange(truth - lower, -0.02, 0.2);
        }
        Assert.Contains("quadrature", Vae.Run("evaluate", "--checkpoint", dir, "--estimator", "exact", "--points", "5", "--threads", "1").Out);
    }

    [Fact]
    public void AnExportedModelCarriesItsRunsProvenanceAndEvaluatesAsItsCheckpointDoes()
    {
        string dir = Path.Combine(TestEnvironment.NewTempDirectory(), "run");
        Assert.Equal(VaeCommand.Ok, Vae.Run(["train", .. Tiny, "--seed", "5", "--out", dir]).Code);
        var exported = Vae.Run("export", "--checkpoint", dir, "--format", "safetensors");
        Assert.True(exported.Code == VaeCommand.Ok, exported.Err);
        string model = Path.Combine(dir, "model.safetensors");
        var fields = VariationalAutoEncoder.ReadSettings(model);
        Assert.Equal(("model", "aevb", "5", "mnist", "30"), (fields["kind"], fields["algorithm"], fields["seed"], fields["run.dataset"], fields["progress.step"]));
        // The same estimate from the model file as from the run's checkpoint: the data set comes from the file.
        string Estimate(string path) => Vae.Run("evaluate", "--checkpoint", path, "--k", "10", "--points", "100", "--json", "--threads", "1").Out;
        Assert.Equal(Estimate(dir).Replace(Path.Combine(dir, "checkpoint.safetensors"), ""), Estimate(model).Replace(model, ""));
        using var m = VariationalAutoEncoder.Create();
        Assert.Throws<ArgumentException>(() => m.Save(Path.Combine(dir, "x.safetensors"), new Dictionary<string, string> { ["model.latent"] = "3" }));
    }

    [Fact]
    public void EvaluateExactRefusesMoreThanThreeLatentDimensionsNamingJ()
    {
        string path = Path.Combine(TestEnvironment.NewTempDirectory(), "j4.safetensors");
        using (var model = VariationalAutoEncoder.Create(new VaeModelOptions { LatentDimensions = 4, HiddenUnits = 10 })) model.Save(path);
        var (code, _, err) = Vae.Run("evaluate", "--checkpoint", path, "--estimator", "exact", "--threads", "1");
        Assert.Equal(VaeCommand.BadUsage, code);
        Assert.Contains("--estimator exact", err);
        Assert.Contains("J = 4", err);
    }

    [Fact]
    public void StepSizeAutoTriesThePapersCandidatesAndTrainsWithTheBest()
    {
        string dir = Path.Combine(TestEnvironment.NewTempDirectory(), "auto");
        var (code, output, err) = Vae.Run("train", "--latent", "2", "--hidden", "20", "--samples", "1000", "--eval-every", "1000", "--threads", "1",
            "--step-size", "auto", "--out", dir);
        Assert.True(code == VaeCommand.Ok, err);
        var trials = output.Split('\n').Where(l => l.TrimStart().StartsWith("step size ")).ToArray();
        Assert.Equal(3, trials.Length);
        string chosen = output.Split('\n').Single(l => l.StartsWith("chosen step size: "))["chosen step size: ".Length..].Trim();
        Assert.Contains(chosen, new[] { "0.01", "0.02", "0.1" });
        Assert.Contains($"Adagrad {chosen},", output);
        // Monte Carlo EM's trials are EM iterations judged by Appendix D on the training images (StepSizeSelectionTests);
        // --warm-up is recorded with the run.
        var mcem = Vae.Run("train", "--algorithm", "mcem", "--ntrain", "200", "--latent", "2", "--hidden", "10", "--step-size", "auto", "--warm-up", "10",
            "--samples", "1000", "--eval-every", "0", "--threads", "1", "--out", Path.Combine(dir, "x"));
        Assert.True(mcem.Code == VaeCommand.Ok, mcem.Err);
        Assert.Contains("training log-likelihood (Appendix D", mcem.Out);
        Assert.Contains("warm_up = 10", File.ReadAllText(Path.Combine(dir, "x", "options.txt")));
        Assert.Equal(VaeCommand.BadUsage, Vae.Run("train", "--step-size", "often", "--out", Path.Combine(dir, "y")).Code);
    }

    [Fact]
    public void EvaluateWithABadCheckpointIsExitCode2()
    {
        string path = Path.Combine(TestEnvironment.NewTempDirectory(), "bad.vae");
        File.WriteAllBytes(path, new byte[64]);
        var (code, _, err) = Vae.Run("evaluate", "--checkpoint", path);
        Assert.Equal(VaeCommand.BadUsage, code);
        Assert.Contains("not a checkpoint: expected a safetensors file", err);
        Assert.Equal(VaeCommand.BadUsage, Vae.Run("evaluate").Code);
        Assert.Equal(VaeCommand.BadUsage, Vae.Run("evaluate", "--checkpoint", path, "--k", "0").Code);
        Assert.Equal(VaeCommand.BadUsage, Vae.Run("evaluate", "--checkpoint", path, "--estimator", "guess").Code);
        Assert.Equal(VaeCommand.BadUsage, Vae.Run("evaluate", "--checkpoint", path, "--posterior-samples", "3").Code);
        Assert.Equal(VaeCommand.BadUsage, Vae.Run("evaluate", "--checkpoint", path, "--leapfrog", "0").Code);
        Assert.Equal(VaeCommand.BadUsage, Vae.Run("evaluate", "--checkpoint", path, "--burn-in", "-1").Code);
        Assert.Equal(VaeCommand.BadUsage, Vae.Run("evaluate", "--checkpoint", path, "--points", "0").Code);
    }

    [Theory]
    [Trait("Cores", "2")] // test.sh runs it alone: two libtorch threads beside another test would share a core
    [InlineData("float32")]
    [InlineData("bfloat16")]
    public async Task TrainingsOnTwoThreadsWriteIdenticalCheckpoints(string precision)
    {
        // Processes of their own: libtorch's thread pools are set up for two threads from the start, as `vae train` does.
        // Several short ones: without Torch.resolveVectorFunctions about one process in 25 computed its first step
        // otherwise (PERFORMANCE.md, "Deterministic").
        string cli = TestEnvironment.CliDll;
        async Task<byte[]> Train()
        {
            string dir = Path.Combine(TestEnvironment.NewTempDirectory(), "run");
            var (code, _, errors) = await TestEnvironment.RunProcessAsync("dotnet",
                ["exec", cli, "train", "--ntrain", "2000", "--samples", "2000", "--eval-every", "1000", "--precision", precision, "--threads", "2", "--out", dir],
                TestEnvironment.RepositoryRoot, new Dictionary<string, string> { ["OMP_NUM_THREADS"] = "2" });
            Assert.True(code == VaeCommand.Ok, errors);
            Assert.Contains("threads = 2", File.ReadAllText(Path.Combine(dir, "options.txt")));
            return File.ReadAllBytes(Path.Combine(dir, Trainer.CheckpointFileName));
        }
        byte[] first = await Train();
        for (int i = 1; i < 5; i++) Assert.Equal(first, await Train());
    }

    [Fact]
    [Trait("Cores", "2")] // test.sh runs it alone: two libtorch threads beside another test would share a core
    public async Task AResumeOnAnotherThreadCountIsRecordedAndVerifyReplaysEachSegmentOnItsOwn()
    {
        // float32 sums round by thread count (past Adagrad's warm-up of 10,000 samples, this model's 1- and 2-thread runs
        // part in their parameters' bits), so a resumed run's record must say when its count changed.
        string cli = TestEnvironment.CliDll, dir = Path.Combine(TestEnvironment.NewTempDirectory(), "run");
        string[] settings = ["--latent", "5", "--hidden", "200", "--step-size", "0.05", "--eval-every", "2000", "--seed", "3"];
        async Task<string> Vae(string[] args)
        {
            // OMP_NUM_THREADS = 1: a resume without --threads must keep the run's count all the same.
            var (code, output, errors) = await TestEnvironment.RunProcessAsync("dotnet", ["exec", cli, .. args], TestEnvironment.RepositoryRoot,
                                                                                 new Dictionary<string, string> { ["OMP_NUM_THREADS"] = "1" });
            Assert.True(code == VaeCommand.Ok, errors + output);
            return output;
        }
        string[] Options() => File.ReadAllLines(Path.Combine(dir, "options.txt"));
        await Vae(["train", .. settings, "--samples", "12000", "--threads", "2", "--out", dir]);
        await Vae(["train", "--resume", dir, "--samples", "14000"]);
        Assert.Contains("threads = 2", Options());
        Assert.DoesNotContain(Options(), l => l.StartsWith("thread_changes", StringComparison.Ordinal));
        await Vae(["train", "--resume", dir, "--samples", "16000", "--threads", "1"]);
        Assert.Contains("threads = 2", Options());
        Assert.Contains("thread_changes = 1 from 14000 samples", Options());
        Assert.Contains("identical: 8 evaluations", await Vae(["verify", dir]));
        // The change is the record's: the same run on two threads throughout ends elsewhere.
        string throughout = Path.Combine(TestEnvironment.NewTempDirectory(), "run");
        await Vae(["train", .. settings, "--samples", "16000", "--threads", "2", "--out", throughout]);
        Assert.Equal(TestRecords.Curve(throughout).Take(7), TestRecords.Curve(dir).Take(7));
        Assert.NotEqual(TestRecords.ModelBytes(throughout), TestRecords.ModelBytes(dir));
    }

    [Theory]
    [InlineData(2)]  // SIGINT, as Ctrl-C sends
    [InlineData(15)] // SIGTERM, as a scheduler or `kill` sends
    public async Task ASignalCheckpointsExits130AndTheResumedRunEndsAsAnUninterruptedOne(int signal)
    {
        // A test host started as a background job without job control ignores SIGINT, and its children inherit that:
        // the run would never see the signal. Say so instead of timing out.
        if (signal == 2 && File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal)) is { } ignored
            && (Convert.ToUInt64(ignored["SigIgn:".Length..].Trim(), 16) & 2UL) != 0)
            Assert.Fail("this test host ignores SIGINT (started as a background job without job control, e.g. `cmd &` in a script), so no child can receive it; run the tests in the foreground");
        string dir = Path.Combine(TestEnvironment.NewTempDirectory(), "run");
        string[] train = SignalledTraining;
        string cli = TestEnvironment.CliDll;
        // The run holds at its first evaluation after a checkpoint exists (500,000 samples: the first is written at
        // 250,000) until the signal, so the test signals a known state.
        string held = Path.Combine(TestEnvironment.NewTempDirectory(), "held");
        var psi = new ProcessStartInfo("dotnet", ["exec", cli, .. train, "--out", dir]) { RedirectStandardError = true, RedirectStandardOutput = true };
        psi.Environment["OMP_NUM_THREADS"] = "1";
        psi.Environment["VAE_HOLD_AFTER_EVALUATION"] = held;
        using var p = Process.Start(psi)!;
        p.ErrorDataReceived += (_, _) => { };
        p.BeginErrorReadLine();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        while (!File.Exists(held))
        {
            if (p.HasExited) Assert.Fail($"the run ended before it held: {await stdout}");
            Assert.True(clock.Elapsed < TimeSpan.FromMinutes(3), "the run did not reach its first evaluation within 3 minutes");
            await Task.Delay(50);
        }
        Assert.Equal("500000", File.ReadAllText(held));
        try
        {

        // A second process may not train into the directory while the first holds it.
        var second = await TestEnvironment.RunProcessAsync("dotnet", ["exec", cli, "train", "--resume", dir, "--threads", "1"], TestEnvironment.RepositoryRoot);
        Assert.Equal(VaeCommand.BadUsage, second.ExitCode);
        Assert.Contains("another training run is using this run directory", second.Errors);

        Assert.Equal(0, kill(p.Id, signal));
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
        }
        finally
        {
            // A failed assertion must not leave the held run behind (it would keep the test host waiting on its output).
            if (!p.HasExited) p.Kill(entireProcessTree: true);
        }
        Assert.Equal(VaeCommand.Interrupted, p.ExitCode);
        Assert.Contains("interrupted at", await stdout);
        // Held at that evaluation, the run checkpoints there: exactly 500,000 samples, whatever the machine's speed.
        Assert.Equal(500_000, AevbTrainer.Resume(dir).SamplesSeen);

        Assert.Equal(VaeCommand.Ok, Vae.Run("train", "--resume", dir, "--threads", "1").Code);
        Assert.Equal(TestRecords.ModelBytes(UninterruptedRun.Value), TestRecords.ModelBytes(dir));
        Assert.Equal(TestRecords.Curve(UninterruptedRun.Value), TestRecords.Curve(dir));
    }

    static readonly string[] SignalledTraining =
        ["train", "--latent", "2", "--hidden", "20", "--ntrain", "2000", "--samples", "1000000", "--eval-every", "250000", "--threads", "1"];

    /// <summary>The run both signals' resumed runs must end as, trained once without interruption.</summary>
    static readonly Lazy<string> UninterruptedRun = new(() =>
    {
        string straight = Path.Combine(TestEnvironment.NewTempDirectory(), "run");
        Assert.Equal(VaeCommand.Ok, Vae.Run([.. SignalledTraining, "--out", straight]).Code);
        return straight;
    });
}
