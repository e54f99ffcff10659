using Vae.Data;

namespace Vae.Tests.Training;

/// <summary>Small real data for fast training tests: the first 1000 MNIST training images and 500 test images.</summary>
public static class SmallMnist
{
    static readonly Lazy<(ImageData Train, ImageData Test)> Data = new(() =>
    {
        var mnist = DataSets.Mnist(TestEnvironment.CachedData);
        return (Slice(mnist.Train, 1000), Slice(mnist.Test, 500));
    });

    public static ImageData Train => Data.Value.Train;
    public static ImageData Test => Data.Value.Test;

    static ImageData Slice(ImageData x, int n) => new(n, x.Height, x.Width, x.Pixels[..(n * x.Dimension)]);

    /// <summary>A small model (J = 3, 40 hidden units) so that hundreds of steps take a second or two.</summary>
    public static VaeModelOptions Model { get; } = new() { HiddenUnits = 40, LatentDimensions = 3 };

    public static AevbOptions Aevb(long seed = 7) => new() { Seed = seed, StepSize = 0.05 };

    /// <summary>A trainer of <see cref="Model"/> for each learner and gradient path the short-run tests cover: aevb
    /// (the hand-derived step), aevb-autograd, aevb-estimator-a (L = 2), iwae-dreg (K = 5), each of those two also by
    /// autograd (-autograd), wake-sleep, wake-sleep-anglepy, mcem, aevb-adam (Adam under Burda's schedule, step size / 50)
    /// and aevb-two-layers (two tanh layers per MLP), both by autograd, and iwae-burda (Burda et al.'s settings at this
    /// size: two tanh layers, Adam under their schedule, M = 20, K = 5, dynamic binarisation; hand-derived).</summary>
    public static Trainer ShortRun(string run, long seed, double stepSize) => run switch
    {
        "aevb" => new AevbTrainer(Model, new AevbOptions { Seed = seed, StepSize = stepSize }),
        "aevb-autograd" => new AevbTrainer(Model, new AevbOptions { Seed = seed, StepSize = stepSize, Gradient = GradientComputation.Autograd }),
        "aevb-estimator-a" or "aevb-estimator-a-autograd" => new AevbTrainer(Model, new AevbOptions
        {
            Seed = seed, StepSize = stepSize, Estimator = SgvbEstimator.A, SamplesPerDatapoint = 2, Gradient = PathOf(run),
        }),
        "iwae-dreg" or "iwae-dreg-autograd" => new AevbTrainer(Model, new AevbOptions
        {
            Seed = seed, StepSize = stepSize, Objective = TrainingObjective.ImportanceWeighted, SamplesPerDatapoint = 5,
            EncoderGradient = EncoderGradient.DoublyReparameterised, Gradient = PathOf(run),
        }),
        "iwae-burda" => new AevbTrainer(new VaeModelOptions { HiddenUnits = 40, HiddenLayers = 2, LatentDimensions = 3 }, new AevbOptions
        {
            Seed = seed, StepSize = stepSize / 50, Objective = TrainingObjective.ImportanceWeighted, SamplesPerDatapoint = 5, BatchSize = 20,
            Optimizer = TrainingOptimizer.Adam, Schedule = StepSizeSchedule.Burda, Binarize = true,
        }),
        "wake-sleep" => new WakeSleepTrainer(Model, new AevbOptions { Seed = seed, StepSize = stepSize }),
        "wake-sleep-anglepy" => new WakeSleepTrainer(Model, new AevbOptions { Seed = seed, StepSize = stepSize, WakeSleepVariant = WakeSleepVariant.Anglepy }),
        "mcem" => new McemTrainer(Model, new AevbOptions { Seed = seed, StepSize = stepSize }),
        "aevb-adam" => new AevbTrainer(Model, new AevbOptions { Seed = seed, StepSize = stepSize / 50, Optimizer = TrainingOptimizer.Adam, Schedule = StepSizeSchedule.Burda }),
        "aevb-two-layers" => new AevbTrainer(new VaeModelOptions { HiddenUnits = 40, HiddenLayers = 2, LatentDimensions = 3 }, new AevbOptions { Seed = seed, StepSize = stepSize }),
        _ => throw new ArgumentOutOfRangeException(nameof(run), run, "no such short run"),
    };

    static GradientComputation PathOf(string run) => run.EndsWith("-autograd", StringComparison.Ordinal) ? GradientComputation.Autograd : GradientComputation.Auto;
}
