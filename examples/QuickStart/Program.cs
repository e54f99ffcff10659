// QuickStart: train a variational auto-encoder on MNIST with AEVB, evaluate it, draw samples, save and load it.
// Uses only the C# façade (namespace Vae). Run: dotnet run --project examples/QuickStart -c Release -- [samples] [output directory]
using System.Globalization;
using Vae;
using Vae.Data;

long samples = args.Length > 0 ? long.Parse(args[0], CultureInfo.InvariantCulture) : 300_000;
string output = args.Length > 1 ? args[1] : "quickstart-output";

// Process-wide speed settings, before any tensor work: MKL's AVX-512 multiplies on AMD CPUs that have them, and
// libtorch's per-step memory reused rather than returned to the kernel.
Console.WriteLine(NativeTuning.Apply().Description);

// MNIST as in the paper: the first 50,000 training images, the official 10,000 test images (fetched and cached).
DataSet mnist = DataSets.MnistPaper();
var test = new ImageData(1000, mnist.Test.Height, mnist.Test.Width, mnist.Test.Pixels[..(1000 * mnist.Test.Dimension)]);

// The paper's settings (estimator B, M = 100, Adagrad 0.02, weight prior), a smaller model: J = 10, 200 hidden units.
using var trainer = new AevbTrainer(new VaeModelOptions { LatentDimensions = 10, HiddenUnits = 200 }, new AevbOptions { Seed = 1 });
TrainingSummary summary = await trainer.FitAsync(mnist.Train, new TrainingOptions
{
    TotalSamples = samples,
    EvaluateEvery = samples / 2,
    TestData = test,
    TrainEvaluationLimit = 1000,
    RunDirectory = Path.Combine(output, "run"),       // checkpoint.safetensors, metrics.csv, options.txt, tensorboard/
    Evaluated = e => Console.WriteLine($"{e.SamplesSeen,9:N0} samples: train bound {e.TrainBound:F2}, test bound {e.TestBound:F2}"),
}, progress: null, CancellationToken.None);
Console.WriteLine($"trained {summary.SamplesSeen:N0} samples at {summary.SamplesPerSecond:F0} samples/s");

VariationalAutoEncoder model = trainer.Model;                  // the trainer's: freed with it
double bound = model.LowerBound(test, seed: 5);
double logLikelihood = model.LogLikelihood(test, k: 100, seed: 5);
Console.WriteLine($"test: lower bound {bound:F2}, importance-weighted log p(x) (K = 100) {logLikelihood:F2} nats per image");

string file = Path.Combine(output, "model.safetensors");
model.Save(file);
using VariationalAutoEncoder loaded = VariationalAutoEncoder.Load(file);   // native tensors: dispose
double again = loaded.LowerBound(test, seed: 5);
ImageMosaic.SavePng(Path.Combine(output, "samples.png"), loaded.Sample(64, seed: 2), 28, 28, columns: 8);
Console.WriteLine($"saved {file}; the loaded model's bound {again:F2}; wrote {Path.Combine(output, "samples.png")}");
return again == bound && logLikelihood >= bound - 1.0 ? 0 : 1;
