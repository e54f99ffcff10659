using TorchSharp;
using Vae.Core;

namespace Vae;

/// <summary>A run's TensorBoard event files (TorchSharp's summary writer) in <c>{run directory}/tensorboard</c>.</summary>
sealed class TensorBoardLog(string runDirectory, int imageHeight, int imageWidth) : IDisposable
{
    /// <summary>Prior samples drawn into each evaluation's mosaic (a fixed seed, so the pictures are comparable over time).</summary>
    const int Samples = 64;

    readonly TorchSharp.Modules.SummaryWriter _writer = torch.utils.tensorboard.SummaryWriter(Path.Combine(runDirectory, "tensorboard"), createRunName: false);

    /// <summary>Logs an evaluation at step = training samples seen: "{measure}/train", "{measure}/test",
    /// "samples_per_second", and the image "samples".</summary>
    public void Write(EvaluationResult r, string measure, double samplesPerSecond, VaeModel model)
    {
        int step = (int)Math.Min(int.MaxValue, r.SamplesSeen);
        _writer.add_scalar($"{measure}/train", (float)r.TrainBound, step);
        if (!double.IsNaN(r.TestBound)) _writer.add_scalar($"{measure}/test", (float)r.TestBound, step);
        _writer.add_scalar("samples_per_second", (float)samplesPerSecond, step);
        if (imageHeight * imageWidth != model.Config.InputDim) return;
        using var scope = torch.NewDisposeScope();
        float[] means;
        using (torch.no_grad())
        {
            var z = torch.randn([Samples, model.Config.LatentDim], dtype: model.Config.DType, generator: Torch.generator(0));
            means = VaeModelModule.decodeMean(model, z).clamp(0, 1).to_type(torch.float32).data<float>().ToArray();
        }
        var (width, height, pixels) = Vae.Core.Plots.Mosaic.layout(Samples, imageHeight, imageWidth, 8, means);
        var image = torch.tensor(pixels, [1, height, width]).to_type(torch.float32) / 255.0;
        _writer.add_img("samples", image, step, dataformats: "CHW");
    }

    public void Dispose() { }
}
