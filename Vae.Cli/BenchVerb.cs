using System.CommandLine;
using System.Diagnostics;
using System.Globalization;

namespace Vae.Cli;

/// <summary><c>vae bench</c>: a short throughput check of this machine with the paper's MNIST model (784-500-20,
/// estimator B, M = 100), as <c>vae train</c> runs it. The paired benchmark against a straightforward TorchSharp loop,
/// with the machine's multiply rate as the bound, is the program in bench/Vae.Bench.</summary>
static class BenchVerb
{
    const int WarmUpSteps = 20;
    static readonly Option<long> Steps = Opt.Integer("--steps", "training steps to time, after 20 warm-up steps", 300, 1, 1_000_000);

    /// <summary><c>vae bench</c>.</summary>
    public static Command Command(TextWriter stdout, TextWriter stderr)
    {
        var command = new Command("bench", "A short throughput check: the paper's MNIST model trained for a few hundred steps (the paired benchmark is bench/Vae.Bench)")
            { Steps, Common.Precision, Common.Threads, Common.Cache };
        command.SetAction(p => Run(new Arguments(p), stdout, stderr));
        return command;
    }

    static int Run(Arguments a, TextWriter stdout, TextWriter stderr)
    {
        int threads = a.Threads(stderr);
        long steps = a.Get(Steps);
        bool mixed = a.Get(Common.Precision) == "bfloat16";
        stderr.WriteLine("loading mnist");
        var train = DataChoice.Named("mnist", a.Get(Common.Cache)).Load(stderr).Train;
        using var trainer = new AevbTrainer(new VaeModelOptions(), new AevbOptions { MixedPrecision = mixed }, "MNIST");
        int batch = trainer.Options.BatchSize;
        trainer.Fit(train, new TrainingOptions { TotalSamples = WarmUpSteps * batch, EvaluateEvery = 0, TrainEvaluationLimit = batch, TensorBoard = false });
        var clock = Stopwatch.StartNew();
        trainer.Fit(train, new TrainingOptions { TotalSamples = (WarmUpSteps + steps) * batch, EvaluateEvery = 0, TrainEvaluationLimit = batch, TensorBoard = false });
        double seconds = clock.Elapsed.TotalSeconds;
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"AEVB on MNIST (784-500-20, M = {batch}, {(mixed ? "bfloat16 multiplies" : "float32")}, {trainer.GradientPath} gradient), {threads} threads; {VaeCommand.Tuning}"));
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{steps * batch / seconds:F0} samples/s, {1000 * seconds / steps:F2} ms per step over {steps} steps"));
        return VaeCommand.Ok;
    }
}
